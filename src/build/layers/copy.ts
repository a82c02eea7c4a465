import { createHash } from 'node:crypto';
import type { Stats } from 'node:fs';
import { chmod, lstat, mkdir, mkdtemp, realpath, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { resolveInRoot, unpackLayer } from '../../runtime/unpack/index.js';
import { InvalidInputError, StevedoreError, errorMessage } from '../../util/errors.js';
import { rootLogger } from '../../util/log.js';
import { mapLimit } from '../../util/pool.js';
import { isTarArchive, openArchive } from './archive.js';
import { fileContentHash } from './content-hash.js';
import { destinationPath, excludeMatcher, matchSources, restamp, walkSource, type CopyRoot, type CopySpec, type MatchedSource } from './copy-plan.js';
import type { LayerEntry } from './entry.js';
import { entryFromStat } from './fs-entry.js';
import type { LayerFile } from './layer-file.js';
import { writeLayer } from './tar-writer.js';

export type { CopyRoot, CopySpec } from './copy-plan.js';

const log = rootLogger.child({ component: 'build-copy' });

/** File contents hashed at once for a cache key. */
const HASH_PARALLEL = 16;

export interface WriteCopyLayerOptions {
  /**
   * The stage's current rootfs: decides whether the destination is an existing directory, resolves
   * symlinks in the destination inside it, and supplies the metadata of parent directories that
   * already exist (so a COPY into /tmp keeps /tmp's 1777). Unset: the image is empty (scratch) or
   * the layer must not depend on it (`--link`).
   */
  targetRootfs?: string;
  /** SOURCE_DATE_EPOCH in seconds: later mtimes are written as this. */
  timestamp?: number;
  /** Where the layer file (and any ADD staging) goes. */
  workDir: string;
  /** See WriteLayerOptions: gzip level, or no compression at all. */
  gzipLevel?: number;
  compress?: boolean;
  /**
   * Called with the planned entries before the layer is written, when they can be replayed (no ADD
   * archive staged), so the caller can build the next snapshot from them while the tar is written.
   */
  onPlanned?: (entries: readonly LayerEntry[]) => void;
  signal?: AbortSignal;
}

/** A COPY layer, with the entries it was written from when they can be replayed (materialize.ts). */
export interface CopyLayerFile extends LayerFile {
  entries?: readonly LayerEntry[];
}

function label(spec: CopySpec): string {
  return spec.add ? 'ADD' : 'COPY';
}

function basenameOf(src: MatchedSource): string {
  const parts = src.rel.split('/').filter(Boolean);
  return parts[parts.length - 1] ?? '';
}

/** Plans the entries of one COPY/ADD layer; `unpack` turns an ADD archive into a directory to copy from. */
class CopyPlanner {
  readonly entries = new Map<string, LayerEntry>();
  readonly #now = Math.floor(Date.now() / 1000);

  readonly root: CopyRoot;
  readonly spec: CopySpec;
  readonly target: string | undefined;
  readonly unpack: (src: MatchedSource) => Promise<string>;

  constructor(root: CopyRoot, spec: CopySpec, target: string | undefined, unpack: (src: MatchedSource) => Promise<string>) {
    this.root = root;
    this.spec = spec;
    this.target = target;
    this.unpack = unpack;
  }

  async #existing(comps: readonly string[]): Promise<Stats | undefined> {
    if (!this.target) return undefined;
    return lstat(join(this.target, ...comps)).catch(() => undefined);
  }

  /** Target-relative components of `comps` with symlinks followed inside the target rootfs. */
  async #resolve(comps: readonly string[]): Promise<string[]> {
    if (!this.target || comps.length === 0) return [...comps];
    const host = await resolveInRoot(this.target, comps.join('/'));
    return host === this.target ? [] : host.slice(this.target.length + 1).split('/');
  }

  /** Parent directories: an existing one keeps its metadata, a new one is 0755 and owned per --chown. */
  async ensureDirs(comps: readonly string[]): Promise<void> {
    for (let i = 1; i <= comps.length; i++) {
      const name = comps.slice(0, i).join('/');
      if (this.entries.has(name)) continue;
      const st = await this.#existing(comps.slice(0, i));
      if (st?.isDirectory()) {
        const e = await entryFromStat(name, join(this.target as string, name), st);
        if (e) this.entries.set(name, e);
      } else {
        const owner = this.spec.chown ?? { uid: 0, gid: 0 };
        this.entries.set(name, { name, type: 'directory', mode: 0o755, ...owner, mtime: this.#now });
      }
    }
  }

  async copyTree(base: readonly string[], hostDir: string, rootRel: string | undefined, preserve: boolean): Promise<void> {
    const root = preserve ? { ...this.root, preserveOwnership: true } : this.root;
    await walkSource(hostDir, rootRel, this.root.ignore, excludeMatcher(this.spec), async (rel, host, st) => {
      const name = [...base, rel].join('/');
      const e = await entryFromStat(name, host, st);
      if (e) this.entries.set(name, restamp(e, st, root, this.spec));
    });
  }

  async plan(sources: MatchedSource[]): Promise<void> {
    const { comps, dirSyntax } = destinationPath(this.spec);
    const exclude = excludeMatcher(this.spec);
    let destIsDir = dirSyntax || sources.length > 1 || !!this.spec.parents || comps.length === 0;
    let dest = comps;
    if (this.target) {
      const full = await this.#resolve(comps);
      const st = await this.#existing(full);
      if (st?.isDirectory()) destIsDir = true;
      dest = destIsDir ? full : [...(await this.#resolve(comps.slice(0, -1))), comps[comps.length - 1]];
    }
    for (const src of sources) {
      const under = this.spec.parents ? [...dest, ...src.parentsRel.split('/').filter(Boolean)] : dest;
      if (src.st.isDirectory()) {
        // As buildah does: the directory receiving the contents is made like any created parent
        // (0755, --chown's owner), not from the source directory's own metadata.
        await this.ensureDirs(under);
        await this.copyTree(under, src.host, src.rel, false);
      } else if (this.spec.add && src.st.isFile() && (await isTarArchive(src.host))) {
        // Docker unpacks local archives into the destination, which is then always a directory.
        const base = this.spec.parents ? under.slice(0, -1) : dest;
        await this.ensureDirs(base);
        const staged = await this.unpack(src);
        // The archive's own `./` entry (applied to the staging root) describes the destination, as
        // buildah applies it; an existing destination in the rootfs is left as it is.
        if (base.length > 0 && !(await this.#existing(base))?.isDirectory()) {
          const st = await lstat(staged);
          const e = await entryFromStat(base.join('/'), staged, st);
          if (e) this.entries.set(e.name, restamp(e, st, { ...this.root, preserveOwnership: true }, this.spec));
        }
        await this.copyTree(base, staged, undefined, true);
      } else {
        if (exclude?.(basenameOf(src), src.rel)) continue;
        const name = this.spec.parents ? under : destIsDir ? [...dest, basenameOf(src)] : dest;
        if (name.length === 0 || name[name.length - 1] === '') {
          throw new InvalidInputError(`${label(this.spec)} ${JSON.stringify(src.what)}: cannot copy a file onto "/"`);
        }
        await this.ensureDirs(name.slice(0, -1));
        const e = await entryFromStat(name.join('/'), src.host, src.st);
        if (e) this.entries.set(e.name, restamp(e, src.st, this.root, this.spec));
      }
    }
  }
}

/**
 * Writes the layer of a COPY or ADD straight from the context (or another stage's rootfs), with
 * Docker's rules: a directory source copies its contents; a destination ending in `/`, several
 * sources or an existing directory make the destination a directory; a relative destination is
 * under the workdir; symlinks inside copied trees stay symlinks while those in a source's own name
 * are followed inside the root; hardlinks within the copy stay hardlinks; `--chown`/`--chmod`
 * restamp what is copied (and `--chown` the parents it creates); ADD unpacks local tar archives.
 */
export async function writeCopyLayer(root: CopyRoot, spec: CopySpec, opts: WriteCopyLayerOptions): Promise<CopyLayerFile> {
  const started = Date.now();
  const rootDir = await realpath(root.dir).catch((err: NodeJS.ErrnoException) => {
    throw new InvalidInputError(`${label(spec)}: source root ${root.dir}: ${err.message}`);
  });
  const target = opts.targetRootfs ? await realpath(opts.targetRootfs) : undefined;
  const croot = { ...root, dir: rootDir };
  const sources = await matchSources(croot, spec);
  await mkdir(opts.workDir, { recursive: true });
  const staging: string[] = [];
  try {
    const planner = new CopyPlanner(croot, spec, target, async (src) => {
      const dir = await mkdtemp(join(opts.workDir, 'add-'));
      staging.push(dir);
      // What an archive without a `./` entry leaves as the destination: a plain created directory.
      await chmod(dir, 0o755);
      try {
        await unpackLayer(dir, await openArchive(src.host), opts.signal ? { signal: opts.signal } : {});
      } catch (err) {
        if (err instanceof Error && err.name === 'AbortError') throw err;
        throw new StevedoreError('ADD_ARCHIVE_FAILED', `ADD ${JSON.stringify(src.what)}: cannot unpack the archive: ${errorMessage(err)}`, { cause: err });
      }
      return dir;
    });
    await planner.plan(sources);
    if (staging.length === 0) opts.onPlanned?.([...planner.entries.values()]);
    const { targetRootfs: _t, onPlanned: _p, ...writeOpts } = opts;
    const layer = await writeLayer([...planner.entries.values()], writeOpts);
    log.debug({ sources: spec.sources, dest: spec.dest, entries: planner.entries.size, digest: layer.digest, ms: Date.now() - started }, 'copy layer');
    // Unpacked archives are staged here and removed below: their entries cannot be replayed later.
    return staging.length === 0 ? { ...layer, entries: [...planner.entries.values()] } : layer;
  } finally {
    await Promise.all(staging.map((d) => rm(d, { recursive: true, force: true })));
  }
}

/**
 * The cache key input of a COPY/ADD: sha256 over the instruction's options and, for every source,
 * the relative paths, types, modes, owners (after --chown), link targets and content hashes of what
 * would be copied. Never mtimes: touching a file or a fresh checkout does not change the key.
 */
export async function hashCopyInputs(root: CopyRoot, spec: CopySpec): Promise<string> {
  const rootDir = await realpath(root.dir).catch((err: NodeJS.ErrnoException) => {
    throw new InvalidInputError(`${label(spec)}: source root ${root.dir}: ${err.message}`);
  });
  const croot = { ...root, dir: rootDir };
  const h = createHash('sha256');
  const line = (v: unknown): void => {
    h.update(JSON.stringify(v));
    h.update('\n');
  };
  line({
    v: 1,
    op: label(spec),
    sources: spec.sources,
    dest: spec.dest,
    workdir: spec.workdir,
    chown: spec.chown ?? null,
    chmod: spec.chmod ?? null,
    exclude: spec.exclude ?? [],
    parents: !!spec.parents,
    preserveOwnership: !!root.preserveOwnership,
  });
  // The walk records every line first; file contents are then hashed several at once (one read
  // after the other is most of the time for a context of thousands of small files), and the lines
  // are hashed in walk order, so the key does not depend on which read finished first.
  const rows: unknown[] = [];
  const files: { row: number; host: string; st: Stats }[] = [];
  const describe = async (name: string, host: string, st: Stats, r: CopyRoot): Promise<void> => {
    const e = await entryFromStat(name, host, st);
    if (!e) return;
    const s = restamp(e, st, r, spec);
    if (s.type === 'file') files.push({ row: rows.length, host, st });
    rows.push([name, s.type, s.mode, s.uid, s.gid, s.linkname ?? null, s.devmajor ?? null, s.devminor ?? null, null]);
  };
  const exclude = excludeMatcher(spec);
  for (const src of await matchSources(croot, spec)) {
    rows.push({ source: src.what, rel: src.rel, parentsRel: src.parentsRel });
    if (src.st.isDirectory()) {
      await describe('.', src.host, src.st, croot);
      await walkSource(src.host, src.rel, croot.ignore, exclude, (rel, host, st) => describe(rel, host, st, croot));
    } else if (spec.add && src.st.isFile() && (await isTarArchive(src.host))) {
      files.push({ row: rows.length, host: src.host, st: src.st });
      rows.push({ archive: null });
    } else if (!exclude?.(basenameOf(src), src.rel)) {
      await describe(basenameOf(src), src.host, src.st, croot);
    }
  }
  const hashes = await mapLimit(files, HASH_PARALLEL, (f) => fileContentHash(f.host, f.st));
  for (const [i, f] of files.entries()) {
    const row = rows[f.row] as unknown[] | { archive: string | null };
    if (Array.isArray(row)) row[8] = hashes[i];
    else row.archive = hashes[i]!;
  }
  for (const row of rows) line(row);
  return h.digest('hex');
}
