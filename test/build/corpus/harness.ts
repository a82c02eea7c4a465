/**
 * Helpers for the builder's corpus tests: flatten an image from an OCI layout into a description
 * of its filesystem (every path with type, mode, owner, content hash, link target), pick the config
 * fields Docker and buildah define, and run buildah on a private vfs store.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, mkdtemp, readdir, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parseConfig, type ContainerConfig, type ImageConfig } from '../../../src/oci/config.js';
import { OciLayout } from '../../../src/oci/layout.js';
import { parseManifest, type ImageManifest } from '../../../src/oci/manifest.js';
import { unpackLayer } from '../../../src/runtime/unpack/index.js';
import { runCommand, type CommandResult } from '../../../hack/lib/harness/procs.js';

export interface FsEntry {
  type: 'file' | 'dir' | 'symlink' | 'other';
  mode: string;
  uid: number;
  gid: number;
  sha256?: string;
  link?: string;
}

export interface LoadedImage {
  manifest: ImageManifest;
  manifestBytes: Buffer;
  mediaType: string;
  config: ImageConfig;
  configBytes: Buffer;
}

export async function loadImage(layoutDir: string, ref: string): Promise<LoadedImage> {
  const layout = await OciLayout.open(layoutDir);
  const desc = await layout.resolve(ref);
  const manifestBytes = await layout.readBlob(desc.digest);
  const parsed = parseManifest(manifestBytes, desc.mediaType);
  if (parsed.kind !== 'image') throw new Error(`${layoutDir}:${ref} is not an image manifest`);
  const configBytes = await layout.readBlob(parsed.manifest.config.digest);
  return { manifest: parsed.manifest, manifestBytes, mediaType: parsed.mediaType, config: parseConfig(configBytes), configBytes };
}

async function hashFile(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Applies every layer (with our unpacker: same rules for both images) and describes the result. */
export async function flatten(layoutDir: string, ref: string): Promise<Map<string, FsEntry>> {
  const layout = await OciLayout.open(layoutDir);
  const image = await loadImage(layoutDir, ref);
  const root = await mkdtemp(join(tmpdir(), 'stevedore-flatten-'));
  try {
    for (const layer of image.manifest.layers) {
      await unpackLayer(root, await layout.openBlob(layer), { mediaType: layer.mediaType });
    }
    const out = new Map<string, FsEntry>();
    const walk = async (dir: string): Promise<void> => {
      for (const name of (await readdir(dir)).sort()) {
        const p = join(dir, name);
        const st = await lstat(p);
        const rel = '/' + relative(root, p);
        const base = { mode: (st.mode & 0o7777).toString(8), uid: st.uid, gid: st.gid };
        if (st.isDirectory()) {
          out.set(rel, { type: 'dir', ...base });
          await walk(p);
        } else if (st.isSymbolicLink()) out.set(rel, { type: 'symlink', ...base, mode: '', link: await readlink(p) });
        else if (st.isFile()) out.set(rel, { type: 'file', ...base, sha256: await hashFile(p) });
        else out.set(rel, { type: 'other', ...base });
      }
    };
    await walk(root);
    return out;
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

/** Reads one file of a flattened image's layers back (for tests that state expected contents). */
export async function fileText(layoutDir: string, ref: string, path: string): Promise<string | undefined> {
  const layout = await OciLayout.open(layoutDir);
  const image = await loadImage(layoutDir, ref);
  const root = await mkdtemp(join(tmpdir(), 'stevedore-flatten-'));
  try {
    for (const layer of image.manifest.layers) await unpackLayer(root, await layout.openBlob(layer), { mediaType: layer.mediaType });
    const { readFile } = await import('node:fs/promises');
    return await readFile(join(root, path), 'utf8').catch(() => undefined);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

/**
 * buildah 1.28 leaves the RUN container's mount points in the layer (empty /dev, /proc, /sys, /run,
 * /etc/hosts, /etc/hostname, /etc/resolv.conf and RUN --mount targets); newer buildah and BuildKit
 * do not, and neither does Stevedore. Those paths are dropped from buildah's side when empty.
 */
export function dropBuildahMountPoints(fs: Map<string, FsEntry>, extraTargets: readonly string[] = []): Map<string, FsEntry> {
  const out = new Map(fs);
  const points = ['/dev', '/proc', '/sys', '/run', '/etc/hosts', '/etc/hostname', '/etc/resolv.conf', ...extraTargets];
  // Deepest first, so a mount point's parent that held only it goes too.
  for (const p of [...points].sort((x, y) => y.split('/').length - x.split('/').length)) {
    const e = out.get(p);
    if (!e) continue;
    const children = [...out.keys()].filter((k) => k.startsWith(`${p}/`));
    const emptyFile = e.type === 'file' && e.sha256 === createHash('sha256').update('').digest('hex');
    if ((e.type === 'dir' && children.length === 0) || emptyFile || (p === '/dev' && e.type === 'dir')) {
      out.delete(p);
      for (const c of children) out.delete(c);
    }
  }
  return out;
}

/** The runtime config fields the corpus compares, with unset, null and empty treated alike. */
export function configSubset(config: ImageConfig): Record<string, unknown> {
  const c: ContainerConfig = config.config ?? {};
  const empty = (v: unknown): boolean => v === undefined || v === null || (Array.isArray(v) && v.length === 0) || (typeof v === 'object' && Object.keys(v as object).length === 0) || v === '';
  const labels = { ...(c.Labels ?? {}) };
  delete labels['io.buildah.version'];
  const fields: Record<string, unknown> = {
    Env: c.Env,
    Entrypoint: c.Entrypoint,
    Cmd: c.Cmd,
    WorkingDir: c.WorkingDir,
    User: c.User,
    ExposedPorts: c.ExposedPorts,
    Volumes: c.Volumes,
    Labels: labels,
    StopSignal: c.StopSignal,
    Healthcheck: c.Healthcheck,
    Shell: c.Shell,
    OnBuild: c.OnBuild,
    architecture: config.architecture,
    os: config.os,
  };
  for (const k of Object.keys(fields)) if (empty(fields[k])) delete fields[k];
  return fields;
}

/** buildah on a private vfs store under `root` (so parallel suites and users never collide). */
export function buildah(root: string, args: readonly string[], opts: { timeoutMs?: number } = {}): Promise<CommandResult> {
  return runCommand('buildah', ['--storage-driver', 'vfs', '--root', join(root, 'storage'), '--runroot', join(root, 'run'), ...args], {
    timeoutMs: opts.timeoutMs ?? 180_000,
    env: { ...process.env, BUILDAH_ISOLATION: 'oci', TMPDIR: root },
  });
}

/** Paths whose difference is explained, for readable failures: only the differing entries. */
export function diffFs(a: Map<string, FsEntry>, b: Map<string, FsEntry>): string[] {
  const out: string[] = [];
  for (const k of new Set([...a.keys(), ...b.keys()])) {
    const x = a.get(k);
    const y = b.get(k);
    if (JSON.stringify(x) !== JSON.stringify(y)) out.push(`${k}: stevedore=${JSON.stringify(x)} buildah=${JSON.stringify(y)}`);
  }
  return out.sort();
}
