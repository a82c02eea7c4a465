/**
 * `stevedore script` (the ImageBuild script source's runner) and `stevedore buildah push`, on a
 * real registry: `buildah` in the script is this stevedore, the script's exit code is the verb's,
 * and push writes the digest the registry serves, as a digest file and as the result document the
 * ImageBuild controller reads.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeBusyboxImage } from '../../hack/lib/harness/images.js';
import { registryDigest } from '../controllers/helpers.js';
import { startRegistry, type TestRegistry } from '../../hack/lib/harness/registry.js';
import { cleanupCli, cliTempDir, stevedore } from './stevedore.js';

let work: string;
let base: string;
let reg: TestRegistry;

beforeAll(async () => {
  work = await cliTempDir('script-cli');
  base = (await makeBusyboxImage(join(work, 'busybox'), 'bb')).ociRef;
  reg = await startRegistry({ name: 'script-cli' });
}, 60_000);
afterAll(async () => {
  await reg?.stop();
  await cleanupCli();
});

describe('stevedore script', () => {
  it("runs sh -eu with buildah meaning stevedore buildah, in --workdir, and exits with the script's code", async () => {
    const env = { STEVEDORE_ROOT: join(work, 'store'), BASE: base };
    const ok = await stevedore(
      [
        'script',
        '--workdir',
        join(work, 'wd'),
        '-c',
        'c=$(buildah from --name w1 "$BASE")\necho "made $c in $(pwd)"\nbuildah containers --noheading --notruncate\nbuildah commit "$c" localhost/out:1 >/dev/null\nbuildah rm "$c" >/dev/null\n',
      ],
      { env, timeoutMs: 120_000 },
    );
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain(`made w1 in ${join(work, 'wd')}`);
    expect(ok.stdout).toMatch(/ w1\n/);
    // -e: a failing command ends the script with its code; -u: an unset variable is an error.
    const failed = await stevedore(['script', '-c', 'buildah run no-such-container -- true\necho not reached'], { env });
    expect(failed.code).not.toBe(0);
    expect(failed.stdout).not.toContain('not reached');
    expect((await stevedore(['script', '-c', 'exit 7'], { env })).code).toBe(7);
    expect((await stevedore(['script', '-c', 'echo "$UNSET_VARIABLE"'], { env })).code).not.toBe(0);
    const file = join(work, 'script.sh');
    await writeFile(file, 'buildah containers -q\nexit 3\n');
    expect((await stevedore(['script', file], { env })).code).toBe(3);
    expect((await stevedore(['script'], { env })).stderr).toContain('give a FILE or -c TEXT');
  });

  it('buildah push writes the pushed digest as --digestfile and --result-file, and a missing image as a PushFailed result', async () => {
    const env = { STEVEDORE_ROOT: join(work, 'store') };
    const digestFile = join(work, 'digest');
    const resultFile = join(work, 'result.json');
    const r = await stevedore(
      ['buildah', 'push', '--digestfile', digestFile, '--result-file', resultFile, 'localhost/out:1', `docker://${reg.host}/pushed/out:1`],
      { env, timeoutMs: 120_000 },
    );
    expect(r.code, r.stderr).toBe(0);
    const digest = await registryDigest(reg.url, 'pushed/out', '1');
    expect(await readFile(digestFile, 'utf8')).toBe(digest);
    const result = JSON.parse(await readFile(resultFile, 'utf8')) as { image: string; digest: string; size: number };
    expect(result).toMatchObject({ image: `${reg.host}/pushed/out:1`, digest });
    expect(result.size).toBeGreaterThan(0);

    // --compression-format (ImageBuild's output.compression for a script source): every layer zstd.
    const z = await stevedore(['buildah', 'push', '--compression-format', 'zstd', 'localhost/out:1', `docker://${reg.host}/pushed/out-zstd:1`], {
      env,
      timeoutMs: 120_000,
    });
    expect(z.code, z.stderr).toBe(0);
    const zm = (await (
      await fetch(`${reg.url}/v2/pushed/out-zstd/manifests/1`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })
    ).json()) as { layers: Array<{ mediaType: string }> };
    expect(zm.layers.length).toBeGreaterThan(0);
    for (const l of zm.layers) expect(l.mediaType).toBe('application/vnd.oci.image.layer.v1.tar+zstd');
    const bad = await stevedore(['buildah', 'push', '--compression-format', 'xz', 'localhost/out:1', `docker://${reg.host}/pushed/out-xz:1`], { env });
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('--compression-format must be gzip, zstd or zstd:chunked, got "xz"');

    const missing = await stevedore(['buildah', 'push', '--result-file', resultFile, 'localhost/never-committed:1', `docker://${reg.host}/pushed/none:1`], {
      env,
    });
    expect(missing.code).not.toBe(0);
    expect(JSON.parse(await readFile(resultFile, 'utf8'))).toEqual({
      error: {
        reason: 'PushFailed',
        message: expect.stringContaining('no image localhost/never-committed:1 in the local store (did the script commit to it?)'),
      },
    });
  });
});
