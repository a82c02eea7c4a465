/**
 * Applies layers with an independent implementation (umoci) by wrapping them in a throwaway OCI
 * layout, and snapshots a tree for comparison.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';

export interface LayerBlob {
  path: string;
  digest: string;
  diffID: string;
  size: number;
}

function blob(layout: string, bytes: Buffer): { digest: string; size: number } {
  const hex = createHash('sha256').update(bytes).digest('hex');
  writeFileSync(join(layout, 'blobs/sha256', hex), bytes);
  return { digest: `sha256:${hex}`, size: bytes.length };
}

export function umociApply(layers: LayerBlob[], layout: string, rootfs: string): void {
  mkdirSync(join(layout, 'blobs/sha256'), { recursive: true });
  writeFileSync(join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  for (const l of layers) copyFileSync(l.path, join(layout, 'blobs/sha256', l.digest.slice(7)));
  const config = blob(
    layout,
    Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffID) } })),
  );
  const manifest = blob(
    layout,
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
        layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: l.digest, size: l.size })),
      }),
    ),
  );
  writeFileSync(
    join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, annotations: { 'org.opencontainers.image.ref.name': 't' } }],
    }),
  );
  execFileSync('umoci', ['raw', 'unpack', '--image', `${layout}:t`, rootfs], { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A GNU tar gzip layer of a directory, with digests, for a "base" layer made by another tool. */
export function gnuTarLayer(dir: string, out: string): LayerBlob {
  execFileSync('tar', ['--numeric-owner', '--sort=name', '-C', dir, '-czf', out, '.']);
  const bytes = readFileSync(out);
  return {
    path: out,
    digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`,
    diffID: `sha256:${createHash('sha256').update(gunzipSync(bytes)).digest('hex')}`,
    size: bytes.length,
  };
}

/** type, mode, owner, size, content hash or link target of every path below `dir` (mtimes left out). */
export function snapshot(dir: string): string[] {
  const out = execFileSync('find', ['.', '-mindepth', '1', '-printf', '%y\t%m\t%U:%G\t%s\t%P\t%l\n'], { cwd: dir, encoding: 'utf8' })
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [type, mode, owner, size, path, target] = line.split('\t');
      if (type === 'f') {
        const hash = createHash('sha256')
          .update(readFileSync(join(dir, path)))
          .digest('hex')
          .slice(0, 16);
        return `${type} ${mode} ${owner} ${size} ${path} ${hash}`;
      }
      // Directory sizes depend on the file system, not on content.
      return `${type} ${mode} ${owner} ${type === 'd' ? '-' : size} ${path}${type === 'l' ? ` -> ${target}` : ''}`;
    });
  return out.sort();
}
