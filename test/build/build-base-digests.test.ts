/**
 * `stevedore build --result-file` / `--metadata-file` name the digest each registry FROM image
 * resolved to (`baseImages`): what the ImageBuild controller watches for spec.rebuild when it
 * cannot read the Containerfile itself (Git and artifact sources). Real `stevedore build`, real
 * registry. A base pinned by digest, a local layout and a stage are not listed.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeResult, RESULT_FILE_LIMIT } from '../../src/build/output/result-file.js';
import { copyReference } from '../../src/copy/copy.js';
import { parseImageName } from '../../src/transports/index.js';
import { cleanupCli, cliTempDir, stevedore } from '../cli/stevedore.js';
import { makeIndex } from '../../hack/lib/harness/images.js';
import { registryDigest } from '../controllers/helpers.js';
import { startRegistry, type TestRegistry } from '../../hack/lib/harness/registry.js';

let reg: TestRegistry | undefined;
let work: string;
let multi: string;
let multiDigest: string;
let other: string;
let otherDigest: string;
let layout: string;

async function push(name: string, platforms: string[], seed: string): Promise<[string, string]> {
  const idx = await makeIndex(join(work, seed), 'latest', platforms, { seed });
  const ref = `${reg!.host}/base/${name}:1`;
  await copyReference(parseImageName(idx.ociRef), parseImageName(`docker://${ref}`), { all: true, destContext: { tlsVerify: false } });
  return [ref, (await registryDigest(reg!.url, `base/${name}`, '1'))!];
}

beforeAll(async () => {
  reg = await startRegistry({ name: 'build-base-digests' });
  work = await cliTempDir('base-digests');
  [multi, multiDigest] = await push('multi', ['linux/amd64', 'linux/arm64'], 'bd-multi');
  [other, otherDigest] = await push('other', ['linux/amd64', 'linux/arm64'], 'bd-other');
  layout = (await makeIndex(join(work, 'layout'), 'x', ['linux/amd64', 'linux/arm64'], { seed: 'bd-layout' })).ociRef;
}, 60_000);

afterAll(async () => {
  await reg?.stop();
  await cleanupCli();
});

describe('build --result-file / --metadata-file: baseImages', () => {
  it('lists each registry FROM by the name the build used and the digest its tag resolved to, once, across platforms', async () => {
    const ctx = join(work, 'ctx');
    await mkdir(ctx, { recursive: true });
    await writeFile(
      join(ctx, 'Containerfile'),
      [
        'ARG BASE',
        `FROM ${other} AS tool`,
        'LABEL stage=tool',
        `FROM ${other}@${otherDigest} AS pinned`,
        `FROM ${layout} AS local`,
        'FROM tool AS again',
        'FROM $BASE',
        'COPY --from=pinned /. /pinned/',
        'COPY --from=local /. /local/',
        'COPY --from=again /. /tool/',
        '',
      ].join('\n'),
    );
    const result = join(work, 'result.json');
    const meta = join(work, 'meta.json');
    const r = await stevedore(
      [
        'build',
        '--root',
        join(work, 'store'),
        '--tls-verify=false',
        '--build-arg',
        `BASE=${multi}`,
        '--platform',
        'linux/amd64,linux/arm64',
        '--result-file',
        result,
        '--metadata-file',
        meta,
        '-t',
        `${reg!.host}/out/app:1`,
        ctx,
      ],
      { timeoutMs: 120_000 },
    );
    expect(r.code, r.stderr).toBe(0);
    const want = [
      { name: multi, digest: multiDigest },
      { name: other, digest: otherDigest },
    ];
    const doc = JSON.parse(await readFile(result, 'utf8')) as { baseImages?: { name: string; digest: string }[] };
    expect([...(doc.baseImages ?? [])].sort((a, b) => a.name.localeCompare(b.name))).toEqual(want);
    const m = JSON.parse(await readFile(meta, 'utf8')) as { baseImages?: { name: string; digest: string }[] };
    expect([...(m.baseImages ?? [])].sort((a, b) => a.name.localeCompare(b.name))).toEqual(want);
  });

  it('a registry that cannot be reached when the bases are resolved only leaves their digests out: the build succeeds', async () => {
    const ctx = join(work, 'ctx-quiet');
    await mkdir(ctx, { recursive: true });
    await writeFile(join(ctx, 'Containerfile'), `FROM ${multi}\nLABEL quiet=yes\n`);
    const store = join(work, 'store-quiet');
    // Pulled first, so the builds below need nothing from the registry.
    expect((await stevedore(['build', '--root', store, '--tls-verify=false', ctx])).code).toBe(0);
    await reg!.stop();
    try {
      const r = await stevedore(['build', '--root', store, '--tls-verify=false', '--no-cache', ctx]);
      expect(r.code, r.stderr).toBe(0);
      // With --result-file an unreachable registry only means no digest: the build still succeeds.
      const result = join(work, 'result-offline.json');
      const withResult = await stevedore(['build', '--root', store, '--tls-verify=false', '--no-cache', '--result-file', result, ctx]);
      expect(withResult.code, withResult.stderr).toBe(0);
      expect(JSON.parse(await readFile(result, 'utf8')).baseImages).toBeUndefined();
    } finally {
      reg = undefined;
    }
  });

  it('keeps the bases when the result has to shrink to fit a termination message', () => {
    const digest = `sha256:${'a'.repeat(64)}`;
    const platforms = Array.from({ length: 60 }, (_, i) => ({ platform: `linux/arch${i}`, digest }));
    const baseImages = [
      { name: 'registry.example/base/one:1', digest },
      { name: 'registry.example/base/two:1', digest },
    ];
    const text = encodeResult({ image: 'registry.example/app:1', digest, size: 1, platforms, baseImages });
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(RESULT_FILE_LIMIT);
    expect(JSON.parse(text).baseImages).toEqual(baseImages);
  });
});
