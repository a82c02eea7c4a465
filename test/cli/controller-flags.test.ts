// `stevedore controller` refuses a bad cache repository template or base-image poll minimum at
// start-up, naming the flag, before it connects to any API server.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanupCli, cliTempDir, stevedore as runStevedore } from './stevedore.js';

afterAll(cleanupCli);

describe('stevedore controller flags', () => {
  it('refuses a cache repository template with a tag, and a poll minimum under 1s or not a duration', async () => {
    const kube = ['--kubeconfig', '/nonexistent/kubeconfig'];
    const tagged = await runStevedore(['controller', '--build-cache-repository', 'cache.example.com/{namespace}/{name}:latest', ...kube]);
    expect(tagged.code).not.toBe(0);
    expect(tagged.stderr).toContain('--build-cache-repository "cache.example.com/{namespace}/{name}:latest": must be a repository');
    const fast = await runStevedore(['controller', '--min-base-image-poll', '100ms', ...kube]);
    expect(fast.code).not.toBe(0);
    expect(fast.stderr).toContain('--min-base-image-poll "100ms": must be at least 1s');
    const word = await runStevedore(['controller', '--min-base-image-poll', 'often', ...kube]);
    expect(word.code).not.toBe(0);
    expect(word.stderr).toMatch(/invalid duration "often"/);
  });

  it('refuses a --build-source-policy that is missing or does not parse, naming the flag and the rule', async () => {
    const kube = ['--kubeconfig', '/nonexistent/kubeconfig'];
    const missing = await runStevedore(['controller', '--build-source-policy', '/nonexistent/policy.json', ...kube]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain('--build-source-policy: /nonexistent/policy.json: no such file');
    const dir = await cliTempDir('controller-flags');
    const bad = join(dir, 'policy.json');
    await writeFile(bad, JSON.stringify({ rules: [{ action: 'MAYBE', selector: { identifier: 'docker-image://x' } }] }));
    const r = await runStevedore(['controller', '--build-source-policy', bad, ...kube]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/--build-source-policy: .*policy\.json: rules\[0\]/);
  });
});
