import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { digestHex } from '../../src/oci/digest.js';
import { DIR_VERSION, parseDirReference } from '../../src/transports/dir.js';
import { parseOciReference } from '../../src/transports/oci.js';
import { makeIndex, makeRandomImage } from '../../hack/lib/harness/images.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';
import { copyImage, readWholeImage, skopeoOk } from './helpers.js';

const tmp = new TempDirs();
afterAll(() => tmp.cleanup());

describe('dir: transport', () => {
  it('writes the containers/image dir format and reads it back with identical digests', async () => {
    const img = await makeRandomImage({ layers: 2, layerSize: 100_000, layoutDir: await tmp.make('dir-src') });
    const out = join(await tmp.make('dir-out'), 'img');
    await copyImage(await parseOciReference(`${img.layoutDir}:latest`).newSource(), await parseDirReference(out).newDestination());
    expect(await readFile(join(out, 'version'), 'utf8')).toBe(DIR_VERSION);
    expect((await readFile(join(out, 'manifest.json'))).equals(img.manifest.bytes)).toBe(true);
    const files = (await readdir(out)).sort();
    for (const d of [img.configDescriptor, ...img.layers]) expect(files).toContain(digestHex(d.digest));
    const { top, blobs } = await readWholeImage(await parseDirReference(out).newSource());
    expect(top.digest).toBe(img.manifest.digest);
    expect(blobs).toHaveLength(3);
    expect(await (await parseDirReference(out).newDestination()).currentDigest?.()).toBe(img.manifest.digest);
  });

  it('stores the children of an index as <hex>.manifest.json', async () => {
    const idx = await makeIndex(await tmp.make('dir-idx'), 'multi', ['linux/amd64', 'linux/arm64']);
    const out = join(await tmp.make('dir-idx-out'), 'img');
    await copyImage(await parseOciReference(`${idx.layoutDir}:multi`).newSource(), await parseDirReference(out).newDestination());
    for (const child of idx.images) expect(await readdir(out)).toContain(`${digestHex(child.manifest.digest)}.manifest.json`);
    const { top, blobs } = await readWholeImage(await parseDirReference(out).newSource());
    expect(top.digest).toBe(idx.index.digest);
    expect(blobs).toHaveLength(4);
  });

  it('an interrupted copy writes no manifest.json', async () => {
    const img = await makeRandomImage({ layers: 1, layerSize: 1000, layoutDir: await tmp.make('dir-int') });
    const out = join(await tmp.make('dir-int-out'), 'img');
    const dst = await parseDirReference(out).newDestination();
    const src = await parseOciReference(`${img.layoutDir}:latest`).newSource();
    for (const d of [img.configDescriptor, ...img.layers]) await dst.putBlob(d, await src.getBlob(d));
    await dst.putManifest(img.manifest, { top: true });
    await dst.close();
    expect(await readdir(out)).not.toContain('manifest.json');
  });

  it('refuses to write into a non-empty directory that is not a dir: image', async () => {
    const out = await tmp.make('dir-foreign');
    await writeFile(join(out, 'precious.txt'), 'keep me');
    await expect(parseDirReference(out).newDestination()).rejects.toThrow(/not a dir: image/);
  });

  it('a tampered blob fails verification on read', async () => {
    const img = await makeRandomImage({ layers: 1, layerSize: 1000, layoutDir: await tmp.make('dir-bad') });
    const out = join(await tmp.make('dir-bad-out'), 'img');
    await copyImage(await parseOciReference(`${img.layoutDir}:latest`).newSource(), await parseDirReference(out).newDestination());
    const file = join(out, digestHex(img.layers[0]!.digest));
    const data = await readFile(file);
    data[0] ^= 1;
    await writeFile(file, data);
    await expect(readWholeImage(await parseDirReference(out).newSource())).rejects.toThrow(/digest mismatch/);
  });
});

describe('dir: interoperability with skopeo', () => {
  it('reads what `skopeo copy oci: dir:` writes, and skopeo reads what we write', async () => {
    const img = await makeRandomImage({ layers: 2, layerSize: 50_000, layoutDir: await tmp.make('dir-sk') });
    const theirs = join(await tmp.make('dir-sk-theirs'), 'img');
    await skopeoOk(['copy', `oci:${img.layoutDir}:latest`, `dir:${theirs}`]);
    const { top } = await readWholeImage(await parseDirReference(theirs).newSource());
    expect(top.digest).toBe(img.manifest.digest);

    const ours = join(await tmp.make('dir-sk-ours'), 'img');
    await copyImage(await parseDirReference(theirs).newSource(), await parseDirReference(ours).newDestination());
    const inspect = JSON.parse((await skopeoOk(['inspect', '--raw', `dir:${ours}`])).stdout) as { config: { digest: string } };
    expect(inspect.config.digest).toBe(img.configDescriptor.digest);
    const back = await tmp.make('dir-sk-back');
    await skopeoOk(['copy', `dir:${ours}`, `oci:${back}:x`]);
    expect((await readWholeImage(await parseOciReference(`${back}:x`).newSource())).top.digest).toBe(img.manifest.digest);
  });

  it('skopeo copies an index we wrote to dir: with --all', async () => {
    const idx = await makeIndex(await tmp.make('dir-skidx'), 'multi', ['linux/amd64', 'linux/arm/v7']);
    const ours = join(await tmp.make('dir-skidx-ours'), 'img');
    await copyImage(await parseOciReference(`${idx.layoutDir}:multi`).newSource(), await parseDirReference(ours).newDestination());
    const back = await tmp.make('dir-skidx-back');
    await skopeoOk(['copy', '--all', `dir:${ours}`, `oci:${back}:m`]);
    expect((await readWholeImage(await parseOciReference(`${back}:m`).newSource())).top.digest).toBe(idx.index.digest);
  });
});
