/**
 * Helpers shared by the transport suites: a minimal copy loop over ImageSource/ImageDestination
 * (the real engine lives in src/copy; this one only needs to exercise the transports), stream
 * draining, and checked runs of skopeo and umoci.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Digest } from '../../src/oci/digest.js';
import { parseManifest, type RawManifest } from '../../src/oci/manifest.js';
import type { ImageDestination, ImageSource } from '../../src/transports/types.js';
import { CommandFailedError, runCommand, type CommandResult } from '../../hack/lib/harness/procs.js';
import { skopeo } from '../harness/skopeo.js';
import { ociSchemaErrors } from '../../hack/lib/harness/schema.js';

/**
 * Copies every blob a manifest needs, children of an index first, top manifest last, then commits.
 * Closes both ends (archive transports remove their scratch space then).
 */
export async function copyImage(src: ImageSource, dst: ImageDestination): Promise<RawManifest> {
  try {
    const top = await src.getManifest();
    await copyManifestContent(src, dst, top);
    await dst.putManifest(top, { top: true });
    await dst.commit();
    return top;
  } finally {
    await dst.close();
    await src.close();
  }
}

async function copyManifestContent(src: ImageSource, dst: ImageDestination, m: RawManifest): Promise<void> {
  const parsed = parseManifest(m.bytes, m.mediaType);
  if (parsed.kind === 'index') {
    for (const child of parsed.index.manifests) {
      const cm = await src.getManifest(child.digest);
      await copyManifestContent(src, dst, cm);
      await dst.putManifest(cm, { top: false });
    }
    return;
  }
  for (const desc of [parsed.manifest.config, ...parsed.manifest.layers]) {
    if (await dst.tryReuseBlob(desc)) continue;
    await dst.putBlob(desc, await src.getBlob(desc));
  }
}

/** Reads a whole stream, returning its sha256 digest and size (the bytes themselves are dropped). */
export async function drain(stream: Readable): Promise<{ digest: Digest; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { digest: `sha256:${hash.digest('hex')}`, size };
}

/**
 * Reads an image through a source and checks everything: every manifest against the OCI schemas
 * (image manifests, indexes) and every blob streamed to its end (so its digest was verified).
 * Returns the digests of all blobs seen. Closes the source unless `keepOpen`.
 */
export async function readWholeImage(src: ImageSource, opts: { schema?: boolean; keepOpen?: boolean } = {}): Promise<{ top: RawManifest; blobs: Digest[] }> {
  try {
    return await readAll(src, opts);
  } finally {
    if (!opts.keepOpen) await src.close();
  }
}

async function readAll(src: ImageSource, opts: { schema?: boolean }): Promise<{ top: RawManifest; blobs: Digest[] }> {
  const top = await src.getManifest();
  const blobs: Digest[] = [];
  async function walk(m: RawManifest): Promise<void> {
    const parsed = parseManifest(m.bytes, m.mediaType);
    if (opts.schema !== false) {
      const errors = ociSchemaErrors(parsed.kind === 'index' ? 'index' : 'manifest', m.bytes);
      if (errors.length) throw new Error(errors.join('\n'));
    }
    if (parsed.kind === 'index') {
      for (const child of parsed.index.manifests) await walk(await src.getManifest(child.digest));
      return;
    }
    for (const desc of [parsed.manifest.config, ...parsed.manifest.layers]) {
      const got = await drain(await src.getBlob(desc));
      if (got.digest !== desc.digest || got.size !== desc.size) throw new Error(`blob ${desc.digest} read back as ${got.digest}`);
      blobs.push(desc.digest);
    }
  }
  await walk(top);
  return { top, blobs };
}

async function checked(cmd: string, args: string[], run: () => Promise<CommandResult>): Promise<CommandResult> {
  const res = await run();
  if (res.code !== 0) throw new CommandFailedError(cmd, args, res);
  return res;
}

/** `skopeo --insecure-policy ARGS`, failing the test on a non-zero exit. */
export function skopeoOk(args: string[]): Promise<CommandResult> {
  return checked('skopeo', args, () => skopeo(args, { timeoutMs: 120_000 }));
}

export function umociOk(args: string[]): Promise<CommandResult> {
  return checked('umoci', args, () => runCommand('umoci', args, { timeoutMs: 120_000 }));
}
