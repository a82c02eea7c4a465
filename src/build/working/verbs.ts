import { readFile } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve } from 'node:path';
import type { HistoryEntry } from '../../oci/config.js';
import { hostPlatform } from '../../oci/platform.js';
import { normaliseImageName } from '../../runtime/store/index.js';
import { DEFAULT_PATH } from '../../runtime/spec.js';
import { InvalidInputError, UnsupportedError } from '../../util/errors.js';
import { parseIdMapFile } from '../../runtime/idmap.js';
import { resolveUser } from '../../runtime/users.js';
import type { AddInstruction, CopyInstruction, RunInstruction } from '../containerfile/index.js';
import { copyStep } from '../executor/copy-step.js';
import type { StepLocation } from '../executor/errors.js';
import { runStep } from '../executor/run-step.js';
import { emptyState, stateFromImage, withCompressedLayers, type StageState } from '../executor/state.js';
import { LayerCompressor } from '../output/compress.js';
import { parseDestination, publish } from '../output/destinations.js';
import { writeImage, type ImageFormat } from '../output/image.js';
import { mergeLayerEntries } from '../layers/merge.js';
import { writeLayer } from '../layers/tar-writer.js';
import { applyConfig, type ConfigEdits } from './config.js';
import { WorkingContainers, type WorkingContainer } from './records.js';
import { withBuildRun, type WorkingOptions } from './session.js';

/** `org/app:1` → `app`: the stem of buildah's `<stem>-working-container` names. */
function nameStem(storeName: string): string {
  const path = storeName.replace(/@.*$/, '');
  const last = path.slice(path.lastIndexOf('/') + 1);
  return last.replace(/:[^:]*$/, '');
}

/**
 * `buildah from IMAGE`: pulls the image (as `build` pulls a base: same store, policy, platform)
 * and records a working container on it. `scratch` starts with no layers and an empty config.
 */
export async function createWorkingContainer(o: WorkingOptions, image: string, opts: { name?: string } = {}): Promise<WorkingContainer> {
  const records = new WorkingContainers(o.store);
  let base: StageState;
  let record: Pick<WorkingContainer, 'image' | 'imageId' | 'imageDigest'>;
  if (image === 'scratch') {
    base = emptyState(hostPlatform());
    record = { image: 'scratch', imageId: '' };
  } else {
    const stored = await withBuildRun(o, '/', (run) => run.image(image));
    base = stateFromImage(stored);
    record = { image: stored.name || normaliseImageName(image).storeName, imageId: stored.configDigest.replace(/^sha256:/, ''), imageDigest: stored.digest };
  }
  return records.locked(async () => {
    const name = await records.freeName(image === 'scratch' ? '' : nameStem(record.image), opts.name);
    const c: WorkingContainer = { id: records.newId(), name, ...record, created: new Date().toISOString(), base, state: base, annotations: {} };
    await records.save(c);
    return c;
  });
}

/** Reads the container, changes it with `fn` and saves the result, under the lock. */
async function update(o: WorkingOptions, ref: string, fn: (c: WorkingContainer) => Promise<WorkingContainer>): Promise<WorkingContainer> {
  const records = new WorkingContainers(o.store);
  return records.locked(async () => {
    const c = await records.find(ref);
    const next = await fn(c);
    await records.save(next);
    return next;
  });
}

function location(c: WorkingContainer, verb: string, text: string): StepLocation {
  return { file: `working container ${c.name}`, line: 0, instruction: verb, text: text.length > 200 ? `${text.slice(0, 197)}...` : text };
}

export interface RunOptions {
  /** `-e KEY=VALUE`: added to the container's Env for this command only. */
  env?: readonly string[];
  user?: string;
  workingdir?: string;
}

/**
 * `buildah run CONTAINER -- CMD...`: the command (exec form, no shell) in a container on the
 * working container's filesystem, with its Env, User and WorkingDir; the files it changed become a
 * layer of the working container. A command that fails changes nothing (a BuildStepError with its
 * exit code).
 */
export async function runInWorkingContainer(o: WorkingOptions, ref: string, argv: readonly string[], opts: RunOptions = {}): Promise<WorkingContainer> {
  if (argv.length === 0) throw new InvalidInputError('run: no command given (buildah run CONTAINER -- COMMAND [ARG...])');
  return update(o, ref, (c) =>
    withBuildRun(o, '/', async (run) => {
      const text = `run ${argv.join(' ')}`;
      const inst: RunInstruction = { kind: 'RUN', command: { form: 'exec', args: [...argv] }, heredocs: [], mounts: [], line: 0, endLine: 0, original: text };
      let env = c.state.config.Env ?? [DEFAULT_PATH];
      const config = { ...c.state.config };
      for (const kv of opts.env ?? []) {
        if (!kv.includes('=')) throw new InvalidInputError(`--env ${kv}: want KEY=VALUE`);
        const key = kv.slice(0, kv.indexOf('='));
        env = [...env.filter((e) => e.split('=', 1)[0] !== key), kv];
      }
      if (opts.user !== undefined) config.User = opts.user;
      if (opts.workingdir !== undefined) config.WorkingDir = opts.workingdir;
      await checkRunUser(() => run.rootfs(c.state), config.User);
      const out = await runStep(run, { ...c.state, config }, inst, env, location(c, 'RUN', text));
      return { ...c, state: { ...c.state, layers: out.state.layers } };
    }),
  );
}

/**
 * The one id of this user namespace when it maps a single uid or gid (a non-root caller without
 * subordinate ids, re-executed as root of its own namespace); undefined otherwise.
 */
async function singleIdOwner(): Promise<number | undefined> {
  const [uids, gids] = await Promise.all(['uid_map', 'gid_map'].map((f) => readFile(`/proc/self/${f}`, 'utf8').then(parseIdMapFile, () => [])));
  const total = (ms: { size: number }[]) => ms.reduce((n, m) => n + m.size, 0);
  if (uids!.length === 0 || (total(uids!) > 1 && total(gids!) > 1)) return undefined;
  return uids![0]!.hostID;
}

/**
 * With one id in the namespace there is no other user to switch to: runc would fail with "unable
 * to setup user: invalid argument". Refused first, naming the user and what to do instead.
 */
async function checkRunUser(rootfs: () => Promise<string>, user: string | undefined): Promise<void> {
  if (user === undefined || user.trim() === '') return;
  const owner = await singleIdOwner();
  if (owner === undefined) return;
  const resolved = await resolveUser(await rootfs(), user);
  if (resolved.uid === 0 && resolved.gid === 0) return;
  throw new UnsupportedError(
    `run: user "${user}" (uid ${resolved.uid}, gid ${resolved.gid}): this process's user namespace has one id (uid ${owner} has no subordinate ids in /etc/subuid and /etc/subgid), so commands run only as root (0:0); run them as root and set config --user after the last run, or give uid ${owner} subordinate ids`,
  );
}

export interface CopyOptions {
  /** `--chown USER[:GROUP]`, names resolved in the container's /etc/passwd and /etc/group. */
  chown?: string;
  /** `--chmod 755`. */
  chmod?: string;
  /** Where relative sources are read from (the caller's working directory). */
  cwd?: string;
}

/**
 * `buildah copy|add CONTAINER SRC... DEST`: host files (relative to `cwd`) into the container,
 * written as a layer the way COPY/ADD write theirs; `add` unpacks local archives and fetches URLs.
 */
export async function copyIntoWorkingContainer(
  o: WorkingOptions,
  ref: string,
  verb: 'copy' | 'add',
  sources: readonly string[],
  dest: string,
  opts: CopyOptions = {},
): Promise<WorkingContainer> {
  if (sources.length === 0) throw new InvalidInputError(`${verb}: no source given (buildah ${verb} CONTAINER SRC... DEST)`);
  const cwd = opts.cwd ?? process.cwd();
  // Paths are read relative to `/`, so absolute and relative sources both work as buildah's do.
  const paths = sources.map((s) => (verb === 'add' && /^(https?|git|ssh):\/\/|^git@/i.test(s) ? s : relative('/', isAbsolute(s) ? s : resolve(cwd, s)) || '.'));
  return update(o, ref, (c) =>
    withBuildRun(o, '/', async (run) => {
      const text = `${verb} ${sources.join(' ')} ${dest}`;
      const common = {
        sources: paths.map((path) => ({ kind: 'path' as const, path })),
        dest,
        link: false,
        exclude: [],
        line: 0,
        endLine: 0,
        original: text,
        ...(opts.chown !== undefined ? { chown: opts.chown } : {}),
        ...(opts.chmod !== undefined ? { chmod: opts.chmod } : {}),
      };
      if (opts.chmod !== undefined && !/^[0-7]{3,4}$/.test(opts.chmod)) throw new InvalidInputError(`--chmod ${opts.chmod}: want an octal mode such as 755`);
      const inst: CopyInstruction | AddInstruction =
        verb === 'add' ? { ...common, kind: 'ADD', keepGitDir: false } : { ...common, kind: 'COPY', parents: false };
      const out = await copyStep(run, c.state, inst, location(c, verb.toUpperCase(), text));
      return { ...c, state: { ...c.state, layers: out.state.layers } };
    }),
  );
}

/** `buildah config`: the edits applied to the container's config (no layer). */
export async function configureWorkingContainer(o: WorkingOptions, ref: string, edits: ConfigEdits): Promise<WorkingContainer> {
  return update(o, ref, async (c) => applyConfig(c, edits));
}

export interface CommitOptions {
  /** `--squash`: the whole filesystem as one layer, and one history entry (as buildah's). */
  squash?: boolean;
  format?: ImageFormat;
  /** Image and history `created` (unix seconds); now by default. */
  timestamp?: number;
}

export interface CommitResult {
  /** The config digest's hex: buildah's image ID. */
  imageId: string;
  digest: string;
  storeName: string;
}

/**
 * `buildah commit CONTAINER IMAGE`: the changes since `from` as one layer over the base's (or,
 * with `squash`, everything as one layer), one history entry as buildah writes it (`created_by`
 * `/bin/sh` unless `config --created-by`, `comment` `FROM base`), the base named in the manifest's
 * annotations; tagged `IMAGE` in the local store, or sent to a registry (`docker://`, a name with a
 * host) or a transport (`oci:DIR`, ...) with compressed layers. The container stays, as buildah's does.
 */
export async function commitWorkingContainer(o: WorkingOptions, ref: string, image: string, opts: CommitOptions = {}): Promise<CommitResult> {
  const dest = parseDestination(image);
  const records = new WorkingContainers(o.store);
  return records.locked(async () => {
    const c = await records.find(ref);
    return withBuildRun(o, '/', async (run) => {
      const created = opts.timestamp !== undefined ? new Date(opts.timestamp * 1000).toISOString() : new Date().toISOString();
      const below: StageState = opts.squash ? emptyState(c.base.platform) : c.base;
      const added = c.state.layers.length - below.layers.length;
      let layers = below.layers;
      // One layer added (a single run or copy): it is the diff already.
      if (added === 1 && !opts.squash) layers = c.state.layers;
      else if (added > 0 || opts.squash) {
        // The layers added since `below`, merged as their headers state them (owners included:
        // without subordinate ids the files on disk are all the caller's), contents from the
        // container's filesystem. Not a diff of the two filesystems, which would lose the owners.
        const since = c.state.layers.slice(below.layers.length);
        const upper = since.length === 0 ? '' : await run.rootfs(c.state);
        const entries =
          since.length === 0
            ? []
            : await mergeLayerEntries(o.store.layout, since, upper, { keepWhiteouts: below.layers.length > 0, ...(o.signal ? { signal: o.signal } : {}) });
        const layer =
          entries.length === 0 ? undefined : await run.adopt(await writeLayer(entries, { ...run.layerOptions(), ...(o.signal ? { signal: o.signal } : {}) }));
        if (layer) layers = [...below.layers, layer];
      }
      const entry: HistoryEntry = { created, created_by: c.createdBy ?? '/bin/sh' };
      if (c.state.author !== undefined) entry.author = c.state.author;
      if (c.image !== 'scratch') entry.comment = `FROM ${c.image}`;
      if (layers.length === below.layers.length) entry.empty_layer = true;
      const state: StageState = { ...c.state, layers, history: [...(opts.squash ? [] : c.base.history), entry] };
      const format = opts.format ?? 'oci';
      const annotations: Record<string, string> = {};
      if (format === 'oci' && c.imageDigest !== undefined) {
        annotations['org.opencontainers.image.base.digest'] = c.imageDigest;
        annotations['org.opencontainers.image.base.name'] = c.image;
      }
      Object.assign(annotations, c.annotations);
      const imageOpts = { format, created, ...(Object.keys(annotations).length > 0 ? { annotations } : {}) };
      const written = await writeImage(o.store.layout, state, imageOpts);
      if (dest.kind === 'local') {
        await o.store.layout.setRef(written.descriptor, dest.storeName);
        return { imageId: written.configDigest.replace(/^sha256:/, ''), digest: written.digest, storeName: dest.storeName };
      }
      // A registry or a transport (`docker://`, `oci:DIR`, ...): sent with compressed layers, as
      // `build` sends; a registry name is also kept in the local store.
      const compressor = new LayerCompressor(o.store.layout, join(o.store.root, 'build-cache'), join(run.workDir, 'compressed'));
      try {
        const sentState = await withCompressedLayers(state, compressor, o.signal);
        const sent = sentState === state ? written : await writeImage(o.store.layout, sentState, imageOpts);
        await publish(o.store, sent, [dest], {
          local: written,
          openBlob: (desc, signal) => compressor.open(desc, signal),
          ...(o.pullContext ? { destContext: o.pullContext } : {}),
          ...(o.signal ? { signal: o.signal } : {}),
        });
        return { imageId: sent.configDigest.replace(/^sha256:/, ''), digest: sent.digest, storeName: dest.kind === 'push' ? dest.storeName : dest.text };
      } finally {
        await compressor.cleanup().catch(() => undefined);
      }
    });
  });
}

/** `buildah rm`: the record goes; its layers stay in the store until pruned. */
export async function removeWorkingContainers(o: WorkingOptions, refs: readonly string[] | 'all'): Promise<WorkingContainer[]> {
  const records = new WorkingContainers(o.store);
  return records.locked(async () => {
    const targets = refs === 'all' ? await records.list() : await Promise.all(refs.map((r) => records.find(r)));
    for (const c of targets) await records.remove(c);
    return targets;
  });
}

export async function listWorkingContainers(o: Pick<WorkingOptions, 'store'>): Promise<WorkingContainer[]> {
  return new WorkingContainers(o.store).list();
}
