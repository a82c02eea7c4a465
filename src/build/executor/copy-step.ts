import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { AddInstruction, CopyInstruction } from '../containerfile/index.js';
import { hashCopyInputs, writeCopyLayer, type CopyLayerFile, type CopyRoot, type CopySpec } from '../layers/copy.js';
import { knownCopyInputs, rememberCopyInputs } from '../cache/input-stats.js';
import { cacheKey } from '../cache/key.js';
import { StevedoreError } from '../../util/errors.js';
import { resolveChown, parseChmod } from './chown.js';
import { BuildStepError, SourceNotFoundError, type StepLocation } from './errors.js';
import { historyText } from './metadata.js';
import type { BuildRun, PreparedSnapshot } from './steps.js';
import type { LayerEntry } from '../layers/entry.js';
import { topChain, withLayer, type BuiltLayer, type StageState } from './state.js';

const URL_SOURCE = /^https?:\/\//i;
/** An ADD source that is a Git repository (as BuildKit): git@host:…, git://, ssh://, or an http(s) URL ending in .git. */
const GIT_SOURCE = /^(git@[^:/]+:|git:\/\/|ssh:\/\/)|^https?:\/\/[^#]*\.git\/?(#.*)?$/i;

/**
 * COPY and ADD: the layer is written straight from the context (or another stage's filesystem),
 * no container started. The cache key is the parent filesystem, the instruction's resolved
 * settings and a content hash of the inputs, so touching a file without changing it is a hit.
 */
export async function copyStep(
  run: BuildRun,
  state: StageState,
  inst: CopyInstruction | AddInstruction,
  loc: StepLocation,
  hints: { snapshotNeeded?: boolean } = {},
): Promise<{ state: StageState; cached: boolean; layer: BuiltLayer | undefined }> {
  const scratch = join(run.workDir, `copy-${randomBytes(6).toString('hex')}`);
  let root: CopyRoot;
  let sourceKey: string;
  const sources: string[] = [];
  const heredocs = inst.sources.filter((s) => s.kind === 'heredoc');
  const paths = inst.sources.flatMap((s) => (s.kind === 'path' ? [s.path] : []));
  const gits = inst.kind === 'ADD' ? paths.filter((p) => GIT_SOURCE.test(p)) : [];
  const urls = inst.kind === 'ADD' ? paths.filter((p) => URL_SOURCE.test(p) && !GIT_SOURCE.test(p)) : [];
  const kinds = (heredocs.length > 0 ? 1 : 0) + (urls.length + gits.length > 0 ? 1 : 0) + (paths.length - urls.length - gits.length > 0 ? 1 : 0);
  if (kinds > 1) throw new BuildStepError(loc, `${inst.kind} cannot mix heredocs, URLs and paths in one instruction; split it`);
  if (gits.length > 0 && urls.length > 0) throw new BuildStepError(loc, 'ADD cannot mix Git repositories and other URLs in one instruction; split it');

  if (heredocs.length > 0) {
    // Inline files become a small context of their own.
    await mkdir(scratch, { recursive: true });
    for (const h of heredocs) {
      if (h.kind !== 'heredoc') continue;
      await writeFile(join(scratch, h.name), h.content, { mode: 0o644 });
      sources.push(h.name);
    }
    root = { dir: scratch };
    sourceKey = 'heredoc';
  } else if (gits.length > 0) {
    // ADD of a Git repository (as BuildKit): a shallow fetch of the ref, its tree (or the subdirectory
    // after `:`) copied as a directory, `.git` dropped unless --keep-git-dir.
    await mkdir(scratch, { recursive: true });
    const addInst = inst as AddInstruction;
    if (addInst.checksum !== undefined) throw new BuildStepError(loc, '--checksum is for a URL download, not a Git repository');
    const [{ remoteContextOf, redact }, { fetchGit }] = await Promise.all([import('../context/remote.js'), import('../remote/git.js')]);
    for (const spec of gits) {
      const remote = remoteContextOf(spec);
      if (remote?.kind !== 'git') throw new BuildStepError(loc, `ADD ${spec}: not a Git URL`);
      const dir = join(scratch, `g${sources.length}`);
      await mkdir(dir);
      try {
        await fetchGit(remote.url, remote.ref, dir, run.opts.signal ? { signal: run.opts.signal } : {});
      } catch (err) {
        throw new SourceNotFoundError(`${loc.file}:${loc.line}: ADD ${redact(spec)}: ${(err as Error).message}`, { cause: err });
      }
      if (!addInst.keepGitDir) await rm(join(dir, '.git'), { recursive: true, force: true });
      sources.push(remote.subdir ? `g${sources.length}/${remote.subdir.replace(/^\/+/, '')}` : `g${sources.length}`);
    }
    root = { dir: scratch, what: 'the Git repository', preserveOwnership: false };
    sourceKey = `git:${gits.join(' ')}`;
  } else if (urls.length > 0) {
    await mkdir(scratch, { recursive: true });
    const addInst = inst as AddInstruction;
    if (addInst.checksum !== undefined && urls.length !== 1) throw new BuildStepError(loc, '--checksum needs exactly one URL source');
    const { fetchUrl } = await import('../layers/url.js');
    for (const written of urls) {
      // BuildKit's identifier of an http source is the URL itself.
      let url = written;
      try {
        if (run.opts.sourcePolicy) url = run.opts.sourcePolicy.evaluate(written);
      } catch (err) {
        throw new BuildStepError(loc, (err as Error).message, { cause: err });
      }
      const got = await fetchUrl(url, { ...(addInst.checksum ? { checksum: addInst.checksum } : {}), workDir: scratch }).catch((err: unknown) => {
        throw new SourceNotFoundError(`${loc.file}:${loc.line}: ADD ${url}: ${(err as Error).message}`, { cause: err });
      });
      const dir = join(scratch, `u${sources.length}`);
      await mkdir(dir);
      await rename(got.path, join(dir, got.name));
      sources.push(`u${sources.length}/${got.name}`);
    }
    root = { dir: scratch };
    sourceKey = `url:${urls.join(' ')}`;
  } else if (inst.kind === 'COPY' && inst.from !== undefined && run.namedFiles(inst.from)) {
    // A --build-context of files: read like the main context (its own .dockerignore), keyed by content.
    const named = run.namedFiles(inst.from)!;
    root = { dir: named.dir, ignore: named.ignore, what: `build context "${inst.from}"` };
    sourceKey = `named:${inst.from.toLowerCase()}`;
    sources.push(...paths);
  } else if (inst.kind === 'COPY' && inst.from !== undefined) {
    const src = await run.source(inst.from, state.platform);
    // As BuildKit: files from another stage or image keep their owners unless --chown says otherwise.
    root = { dir: await run.rootfs(src.state), preserveOwnership: true, what: `${/^\d+$/.test(inst.from) ? 'stage' : 'stage or image'} "${inst.from}"` };
    sourceKey = src.key;
    sources.push(...paths);
  } else {
    root = { dir: run.opts.context.dir, ignore: run.opts.context.ignore };
    sourceKey = 'context';
    sources.push(...paths);
  }

  const spec: CopySpec = {
    sources,
    dest: inst.dest,
    workdir: state.config.WorkingDir || '/',
    ...(inst.exclude.length > 0 ? { exclude: inst.exclude } : {}),
    ...(inst.kind === 'COPY' && inst.parents ? { parents: true } : {}),
    // ADD unpacks local archives unless --unpack=false; a URL is never unpacked.
    ...(inst.kind === 'ADD' && urls.length === 0 && gits.length === 0 && inst.unpack !== false ? { add: true } : {}),
  };
  const chmod = parseChmod(inst.chmod);
  if (chmod !== undefined) spec.chmod = chmod;
  if (inst.chown !== undefined) {
    try {
      spec.chown = await resolveChown(inst.chown, () => run.rootfs(state));
    } catch (err) {
      throw new BuildStepError(loc, `--chown=${inst.chown}: ${(err as Error).message}`, { cause: err });
    }
  }

  const fail = (err: unknown): never => {
    if (err instanceof StevedoreError && /NOT_FOUND|NO_SOURCE|SOURCE/.test(err.code)) {
      throw new SourceNotFoundError(`${loc.file}:${loc.line}: ${loc.text}: ${err.message}`, { cause: err });
    }
    if (err instanceof BuildStepError || err instanceof SourceNotFoundError) throw err;
    if ((err as NodeJS.ErrnoException)?.code === 'ENOENT')
      throw new SourceNotFoundError(`${loc.file}:${loc.line}: ${loc.text}: ${(err as Error).message}`, { cause: err });
    throw new BuildStepError(loc, (err as Error).message, { cause: err });
  };

  const layerOpts = run.layerOptions();
  // A later step needs this step's filesystem: it is made from the planned entries while the
  // layer's tar is written, rather than after.
  let prepared: PreparedSnapshot | undefined;
  const onPlanned = hints.snapshotNeeded ? (entries: readonly LayerEntry[]) => void (prepared = run.prepareSnapshot(state, entries)) : undefined;
  const writeLayer = async (): Promise<CopyLayerFile> =>
    writeCopyLayer(root, spec, { ...layerOpts, targetRootfs: await run.rootfs(state), ...(onPlanned ? { onPlanned } : {}) });
  // When the context's files changed since the last build (or there was none), a cache hit is
  // unlikely: the layer is written while the inputs are hashed, instead of after.
  let speculative: Promise<CopyLayerFile> | undefined;

  // A step that ends without its layer drops the snapshot made ahead (once the write that may
  // still start one has settled).
  const discard = async (): Promise<void> => {
    await speculative?.catch(() => undefined);
    await (prepared as PreparedSnapshot | undefined)?.discard();
  };

  // Stage and image sources are identified by their filesystem's chain; the context by content.
  let inputs: string;
  try {
    if (sourceKey === 'context') {
      const known = await knownCopyInputs(run.cache.dir, root, spec);
      if (known.hash) inputs = known.hash;
      else {
        if (!run.opts.noCache) {
          speculative = writeLayer();
          speculative.catch(() => undefined);
        }
        inputs = await hashCopyInputs(root, spec);
        await rememberCopyInputs(run.cache.dir, known.fingerprint, inputs);
      }
    } else if (sourceKey === 'heredoc' || sourceKey.startsWith('url:') || sourceKey.startsWith('git:') || sourceKey.startsWith('named:'))
      inputs = await hashCopyInputs(root, spec);
    else inputs = sourceKey;
  } catch (err) {
    await discard();
    return fail(err);
  }
  const key = cacheKey(topChain(state), inst.kind, {
    spec,
    inputs,
    source: sourceKey === 'context' ? 'context' : sourceKey,
    timestamp: run.opts.timestamp ?? null,
  });
  const history = run.history(historyText(inst, state.config));
  const hit = await run.cached(key);
  if (hit) {
    if (speculative)
      await speculative.then(
        (f) => rm(f.path, { force: true }),
        () => undefined,
      );
    await discard();
    return { state: withLayer(state, hit.layer, history), cached: true, layer: hit.layer };
  }

  let layer: BuiltLayer | undefined;
  let written: CopyLayerFile;
  try {
    written = await (speculative ?? writeLayer());
    layer = await run.adopt(written);
  } catch (err) {
    await discard();
    return fail(err);
  }
  await run.remember(key, layer).catch(async (err: unknown) => {
    await discard();
    throw err;
  });
  const next = withLayer(state, layer, history);
  // The next step's filesystem: the entries are copied onto the parent's snapshot rather than the
  // layer's tar being read back and unpacked.
  if (layer && written.entries) {
    run.seedSnapshot(state, next, written.entries, prepared);
    // Made already (or being made): put it in its place now, whichever step asks first.
    if (prepared) run.prefetch(next);
  } else await discard();
  return { state: next, cached: false, layer };
}
