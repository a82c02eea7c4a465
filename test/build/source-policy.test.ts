/**
 * BuildKit's source policy, as `--source-policy-file` reads it: rules in order, a CONVERT restarts
 * the evaluation with the new identifier, of ALLOW/DENY the last match wins; EXACT, WILDCARD and
 * REGEX selectors; bad files named with the rule at fault. Then through the real CLI against a
 * real registry: a floating FROM pinned to a digest, a denied repository refused.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SourcePolicy } from '../../src/build/source-policy.js';
import { copyReference } from '../../src/copy/copy.js';
import { parseImageName } from '../../src/transports/index.js';
import { cleanupCli, cliTempDir, stevedore } from '../cli/stevedore.js';
import { makeBusyboxImage } from '../../hack/lib/harness/images.js';
import { startRegistry, type TestRegistry } from '../../hack/lib/harness/registry.js';

let work: string;
async function policy(rules: unknown[]): Promise<SourcePolicy> {
  const file = join(work, `policy-${Math.random().toString(16).slice(2)}.json`);
  await writeFile(file, JSON.stringify({ rules }));
  return SourcePolicy.load(file);
}

let reg: TestRegistry;
let pinned: string;
beforeAll(async () => {
  work = await cliTempDir('source-policy');
  reg = await startRegistry();
  const bb = await makeBusyboxImage(join(work, 'busybox'), 'bb');
  pinned = bb.descriptor.digest;
  await copyReference(parseImageName(bb.ociRef), parseImageName(`docker://${reg.host}/lib/busybox:pinned`));
}, 60_000);
afterAll(async () => {
  await reg?.stop();
  await cleanupCli();
});

const img = (r: string) => `docker-image://docker.io/library/${r}`;

describe('SourcePolicy.evaluate', () => {
  it('CONVERT pins an exact identifier; others pass unchanged', async () => {
    const p = await policy([
      { action: 'CONVERT', selector: { identifier: img('alpine:3.19') }, updates: { identifier: img(`alpine:3.19@sha256:${'a'.repeat(64)}`) } },
    ]);
    expect(p.evaluate(img('alpine:3.19'))).toBe(img(`alpine:3.19@sha256:${'a'.repeat(64)}`));
    expect(p.evaluate(img('alpine:3.20'))).toBe(img('alpine:3.20'));
  });

  it('WILDCARD and REGEX selectors, with ${1} in the new identifier; a convert is evaluated again', async () => {
    const p = await policy([
      {
        action: 'CONVERT',
        selector: { identifier: 'docker-image://docker.io/library/*', matchType: 'WILDCARD' },
        updates: { identifier: 'docker-image://mirror.test/library/${1}' },
      },
      {
        action: 'CONVERT',
        selector: { identifier: 'docker-image://mirror\\.test/library/(.*):latest', matchType: 'REGEX' },
        updates: { identifier: 'docker-image://mirror.test/library/${1}:stable' },
      },
    ]);
    expect(p.evaluate(img('node:latest'))).toBe('docker-image://mirror.test/library/node:stable');
    expect(p.evaluate(img('node:22'))).toBe('docker-image://mirror.test/library/node:22');
  });

  it('DENY refuses; of ALLOW and DENY the last matching rule wins', async () => {
    const p = await policy([
      { action: 'DENY', selector: { identifier: 'docker-image://*', matchType: 'WILDCARD' } },
      { action: 'ALLOW', selector: { identifier: 'docker-image://registry.internal/*', matchType: 'WILDCARD' } },
      { action: 'DENY', selector: { identifier: 'docker-image://registry.internal/legacy/*', matchType: 'WILDCARD' } },
    ]);
    expect(p.evaluate('docker-image://registry.internal/app:1')).toBe('docker-image://registry.internal/app:1');
    expect(() => p.evaluate(img('alpine:latest'))).toThrow(
      /docker-image:\/\/docker\.io\/library\/alpine:latest is denied by .*policy-.*\.json \(rule DENY docker-image:\/\/\*\)/,
    );
    expect(() => p.evaluate('docker-image://registry.internal/legacy/x:1')).toThrow(/denied/);
  });

  it('a conversion loop stops with an error', async () => {
    const p = await policy([
      { action: 'CONVERT', selector: { identifier: 'docker-image://a' }, updates: { identifier: 'docker-image://b' } },
      { action: 'CONVERT', selector: { identifier: 'docker-image://b' }, updates: { identifier: 'docker-image://a' } },
    ]);
    expect(() => p.evaluate('docker-image://a')).toThrow(/more than 20 conversions/);
  });

  it.each([
    [[{ action: 'PIN', selector: { identifier: 'x' } }], 'rules[0]: action must be ALLOW, DENY or CONVERT'],
    [[{ action: 'DENY', selector: {} }], 'rules[0]: selector.identifier is missing'],
    [
      [
        { action: 'DENY', selector: { identifier: 'x' } },
        { action: 'CONVERT', selector: { identifier: 'y' } },
      ],
      'rules[1]: a CONVERT needs updates.identifier',
    ],
    [
      [{ action: 'DENY', selector: { identifier: '(', matchType: 'REGEX' } }],
      'rules[0]: selector.identifier "(" is not a valid RE2 regular expression: missing closing )',
    ],
  ])('a bad rule is named: %j', async (rules, message) => {
    await expect(policy(rules)).rejects.toThrow(message);
  });
});

describe('stevedore build --source-policy-file', () => {
  it('pins a floating FROM to a digest, and refuses a denied repository', async () => {
    const file = join(work, 'cli-policy.json');
    await writeFile(
      file,
      JSON.stringify({
        rules: [
          {
            action: 'CONVERT',
            selector: { identifier: `docker-image://${reg.host}/lib/busybox:floating` },
            updates: { identifier: `docker-image://${reg.host}/lib/busybox@${pinned}` },
          },
          { action: 'DENY', selector: { identifier: `docker-image://${reg.host}/untrusted/*`, matchType: 'WILDCARD' } },
        ],
      }),
    );
    const ctx = await cliTempDir('policy-ctx');
    await writeFile(join(ctx, 'Containerfile'), `FROM ${reg.host}/lib/busybox:floating\nRUN echo pinned > /p\n`);
    const store = join(work, 'store');
    const r = await stevedore(['build', '--root', store, '--tls-verify=false', '--source-policy-file', file, ctx], { timeoutMs: 120_000 });
    expect(r.code, r.stderr).toBe(0);
    // Without the policy the tag does not exist.
    const without = await stevedore(['build', '--root', join(work, 'store2'), '--tls-verify=false', ctx], { timeoutMs: 120_000 });
    expect(without.code).toBe(125);
    await writeFile(join(ctx, 'Containerfile'), `FROM ${reg.host}/untrusted/x:1\n`);
    const denied = await stevedore(['build', '--root', store, '--tls-verify=false', '--source-policy-file', file, ctx], { timeoutMs: 120_000 });
    expect(denied.code).toBe(125);
    expect(denied.stderr).toMatch(/source docker-image:\/\/127\.0\.0\.1:\d+\/untrusted\/x:1 is denied by .*cli-policy\.json.*\[SOURCE_DENIED\]/);
  }, 180_000);

  it("obeys an administrator's policy in STEVEDORE_SOURCE_POLICY (as a build Pod gets it), which --source-policy-file cannot replace", async () => {
    const adminPolicy = JSON.stringify({
      rules: [{ action: 'DENY', selector: { identifier: `docker-image://${reg.host}/untrusted/*`, matchType: 'WILDCARD' } }],
    });
    const ctx = await cliTempDir('admin-policy-ctx');
    await writeFile(join(ctx, 'Containerfile'), `FROM ${reg.host}/untrusted/x:1\n`);
    const env = { STEVEDORE_SOURCE_POLICY: adminPolicy };
    const denied = await stevedore(['build', '--root', join(work, 'store3'), '--tls-verify=false', ctx], { env, timeoutMs: 120_000 });
    expect(denied.code).toBe(125);
    expect(denied.stderr).toMatch(/untrusted\/x:1 is denied by STEVEDORE_SOURCE_POLICY.*\[SOURCE_DENIED\]/);
    // A build (a tenant's extra flags, say) cannot swap in a policy of its own.
    const own = join(work, 'allow-all.json');
    await writeFile(own, JSON.stringify({ rules: [] }));
    const swapped = await stevedore(['build', '--root', join(work, 'store3'), '--tls-verify=false', '--source-policy-file', own, ctx], {
      env,
      timeoutMs: 120_000,
    });
    expect(swapped.code).toBe(125);
    expect(swapped.stderr).toContain('--source-policy-file cannot be given while STEVEDORE_SOURCE_POLICY sets the source policy');
    const broken = await stevedore(['build', '--root', join(work, 'store3'), '--tls-verify=false', ctx], {
      env: { STEVEDORE_SOURCE_POLICY: '{"rules": 1}' },
      timeoutMs: 120_000,
    });
    expect(broken.code).toBe(125);
    expect(broken.stderr).toContain('STEVEDORE_SOURCE_POLICY: want {"rules": [...]}');
  }, 180_000);
});
