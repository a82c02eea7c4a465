/**
 * The builder engine: `buildImage` runs a Containerfile against a context and writes the image to
 * the local store, registries and layouts. The parser and planner are in `containerfile/`, the
 * context and layer writers in `context/` and `layers/`, step execution in `executor/`, the cache in
 * `cache/`, image assembly and destinations in `output/`.
 */
import { randomBytes } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { basename, isAbsolute, join, resolve } from 'node:path';
import type { CopyResult } from '../copy/copy.js';
import { formatPlatform, type Platform } from '../oci/platform.js';
import type { ImageStore } from '../runtime/store/index.js';
import type { TransportContext } from '../transports/types.js';
import { InvalidInputError, StevedoreError } from '../util/errors.js';
import { openContext } from './context/source.js';
import { remoteContextOf } from './context/remote.js';
import { resolveInRoot } from '../runtime/unpack/index.js';
import { executeBuild, type ExecuteResult } from './executor/execute.js';
import type { ExecuteOptions, NamedContext } from './executor/types.js';
import { LayerCompressor, type CompressionFormat } from './output/compress.js';
import { parseDestination, publish, type Destination } from './output/destinations.js';
import { writeImage, writeIndex, type ImageFormat, type WrittenImage } from './output/image.js';
import { withCompressedLayers } from './executor/state.js';
import type { PlatformImage } from './output/metadata-file.js';
import { allPlatforms } from './all-platforms.js';

export { BuildStepError, SourceNotFoundError, BuildInterruptedError } from './executor/errors.js';
export { PushFailedError, parseDestination, type Destination } from './output/destinations.js';
export { textReporter } from './output/progress.js';
export { encodeResult, writeResultFile, type FailureReason, type BuildSuccess } from './output/result-file.js';
export type { BuildReporter, SecretSource } from './executor/types.js';
export { buildMetadata } from './output/metadata-file.js';

export interface BuildImageOptions extends Omit<ExecuteOptions, 'context' | 'containerfile' | 'store' | 'namedContexts'> {
  store: ImageStore;
  /** A directory, a .tar/.tar.gz, or `-` (a tar on stdin). */
  context: string;
  /** The Containerfile; default `Containerfile`, else `Dockerfile`, in the context. */
  file?: string;
  /** The Containerfile's text itself (`-f -`); `file` is then not read. */
  containerfileText?: string;
  /** Further Containerfiles whose instructions follow `file`'s, as buildah joins several `-f` (paths as `file`). */
  moreFiles?: string[];
  /**
   * `--build-context NAME=VALUE`: `docker-image://REF` (or `container-image://REF`) names an image
   * used for NAME; a path, a Git or http URL names files (opened as the main context is).
   */
  buildContexts?: Record<string, string>;
  /** `--ignorefile`: patterns from this file instead of the context's ignore file. */
  ignoreFile?: string;
  /** How layers that leave the machine (push, layout, archive, registry cache) are compressed; gzip by default. */
  compressionFormat?: CompressionFormat;
  /** `-t` values: local names, registry names (pushed), `oci:DIR:TAG` and other transports. */
  tags?: string[];
  /** Destinations besides the `-t` ones, sent to like them (`build --manifest`: the list's layout). */
  moreDestinations?: Destination[];
  format?: ImageFormat;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** buildah's `--env K=V`, `--unsetenv K`, `--omit-history`: edits of the image config. */
  env?: Record<string, string>;
  unsetEnv?: string[];
  omitHistory?: boolean;
  /** Several target platforms: each is built, and the image is an index over them. */
  platforms?: Platform[];
  /** `--all-platforms`: every platform all the base images offer (instead of `platforms`). */
  allPlatforms?: boolean;
  /** Credentials and TLS for pushing. */
  destContext?: TransportContext;
  stdin?: NodeJS.ReadableStream;
}

export interface BuildImageResult {
  /**
   * The image as it was sent (pushed, or written to a layout or archive: gzip layers), or, when it
   * only went to the local store, as stored there. For several platforms, the index over them.
   */
  image: WrittenImage;
  /** The image as the local store holds it (the builder's layers as plain tars). */
  local: WrittenImage;
  /** The first platform (the only one unless several were asked for). */
  platform: string;
  /** Digest of each platform's image, as `image` has them. */
  platforms: { platform: string; digest: string }[];
  /** Each platform's image descriptor and config digest, as `image` has them. */
  platformImages: PlatformImage[];
  destinations: Destination[];
  pushed: CopyResult[];
  execution: ExecuteResult;
}

/** The name a Containerfile read from stdin (`-f -`) has in messages. */
const STDIN_NAME = 'Containerfile (stdin)';

async function findContainerfile(contextDir: string, file: string | undefined): Promise<string> {
  if (file !== undefined) return resolve(file);
  for (const name of ['Containerfile', 'Dockerfile']) {
    const p = join(contextDir, name);
    if (
      await stat(p).then(
        (s) => s.isFile(),
        () => false,
      )
    )
      return p;
  }
  throw new InvalidInputError(`no Containerfile or Dockerfile in the context ${contextDir}; name one with -f`);
}

/**
 * The Containerfile text and its name for messages: `-f -`'s text, the named file (inside a
 * context from a URL when relative), or Containerfile/Dockerfile in the context; then the files
 * joined after it (`-f A -f B`).
 */
async function readContainerfiles(
  opts: BuildImageOptions,
  contextDir: string,
  fileSpec: string | undefined,
  inRemote: boolean,
): Promise<ExecuteOptions['containerfile']> {
  const read = (p: string): Promise<string> =>
    readFile(p, 'utf8').catch((err: unknown) => {
      throw new InvalidInputError(`reading the Containerfile ${p}: ${(err as Error).message}`);
    });
  const locate = (f: string): Promise<string> => (inRemote && !isAbsolute(f) ? resolveInRoot(contextDir, f) : Promise.resolve(resolve(f)));
  let text: string;
  let name: string;
  if (opts.containerfileText !== undefined) {
    text = opts.containerfileText;
    name = STDIN_NAME;
  } else {
    const path = await findContainerfile(contextDir, fileSpec === undefined ? undefined : await locate(fileSpec));
    text = await read(path);
    name = fileSpec !== undefined ? opts.file! : basename(path);
  }
  const more: { text: string; file: string }[] = [];
  for (const f of opts.moreFiles ?? []) more.push({ text: await read(await locate(f)), file: f });
  return { text, name, ...(more.length > 0 ? { more } : {}) };
}

export async function buildImage(opts: BuildImageOptions): Promise<BuildImageResult> {
  if (opts.allPlatforms && (opts.platforms?.length ?? 0) > 0) throw new InvalidInputError('give --platform or --all-platforms, not both');
  if (opts.exports?.length && (opts.platforms?.length ?? 0) > 1)
    throw new InvalidInputError("--output writes one platform's files: build one --platform at a time");
  if ((opts.compressionFormat === 'zstd' || opts.compressionFormat === 'zstd:chunked') && opts.format === 'docker') {
    throw new InvalidInputError(`--compression-format ${opts.compressionFormat} needs --format oci: Docker image manifests have no zstd layer type`);
  }
  // Parse destinations first: a bad -t fails before any work.
  const destinations = [...(opts.tags ?? []).map(parseDestination), ...(opts.moreDestinations ?? [])];
  // With a context from a URL, a relative -f names a file in it (as docker build).
  const inRemote = opts.file !== undefined && !isAbsolute(opts.file) && remoteContextOf(opts.context) !== undefined;
  const fileSpec = opts.file === undefined ? undefined : inRemote ? opts.file : resolve(opts.file);
  const context = await openContext(opts.context, {
    ...(fileSpec ? { containerfile: fileSpec } : {}),
    ...(opts.stdin ? { stdin: opts.stdin } : {}),
    ...(opts.ignoreFile !== undefined ? { ignoreFile: opts.ignoreFile } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  let named: Map<string, NamedContext>;
  try {
    named = await openNamedContexts(opts.buildContexts ?? {}, opts.signal);
  } catch (err) {
    await context.cleanup();
    throw err;
  }
  const compressor = new LayerCompressor(
    opts.store.layout,
    join(opts.store.root, 'build-cache'),
    join(opts.store.root, 'tmp', `compress-${randomBytes(8).toString('hex')}`),
    opts.compressionFormat ?? 'gzip',
  );
  try {
    const containerfile = await readContainerfiles(opts, context.dir, fileSpec, inRemote);
    const targets: (Platform | undefined)[] = opts.allPlatforms
      ? await allPlatforms({
          containerfile,
          ...(opts.buildArgs ? { buildArgs: opts.buildArgs } : {}),
          ...(opts.target !== undefined ? { target: opts.target } : {}),
          resolveName: (name) => {
            const n = named.get(name.toLowerCase());
            return n?.kind === 'image' ? n.ref : name;
          },
          ...(opts.pullContext ? { context: opts.pullContext } : {}),
          ...(opts.signal ? { signal: opts.signal } : {}),
        })
      : opts.platforms && opts.platforms.length > 0
        ? opts.platforms
        : [opts.platform];
    // Only what leaves the machine is compressed: a push, a layout or archive, the registry cache.
    const sends = destinations.some((d) => d.kind !== 'local');
    const format = opts.format ?? 'oci';
    const imageOpts = (execution: ExecuteResult, multi: boolean) => ({
      format,
      created: execution.created,
      ...(opts.labels ? { labels: opts.labels } : {}),
      ...(opts.env ? { env: opts.env } : {}),
      ...(opts.unsetEnv ? { unsetEnv: opts.unsetEnv } : {}),
      ...(opts.omitHistory ? { omitHistory: true } : {}),
      ...(opts.annotations && !multi ? { annotations: opts.annotations } : {}),
    });
    const built: { local: WrittenImage; sent: WrittenImage; platform: Platform; execution: ExecuteResult }[] = [];
    for (const platform of targets) {
      const execution = await executeBuild({
        ...opts,
        ...(platform ? { platform } : {}),
        context,
        namedContexts: named,
        containerfile,
        compressor,
      });
      opts.signal?.throwIfAborted();
      const multi = targets.length > 1;
      const local = await writeImage(opts.store.layout, execution.state, imageOpts(execution, multi));
      const state = sends ? await withCompressedLayers(execution.state, compressor, opts.signal) : execution.state;
      const sent = state === execution.state ? local : await writeImage(opts.store.layout, state, imageOpts(execution, multi));
      built.push({ local, sent, platform: execution.state.platform, execution });
    }
    const indexOpts = { format, ...(opts.annotations ? { annotations: opts.annotations } : {}) };
    const one = built.length === 1;
    const local = one
      ? built[0]!.local
      : await writeIndex(
          opts.store.layout,
          built.map((b) => ({ image: b.local, platform: b.platform })),
          indexOpts,
        );
    const sent = built.every((b) => b.sent === b.local)
      ? local
      : one
        ? built[0]!.sent
        : await writeIndex(
            opts.store.layout,
            built.map((b) => ({ image: b.sent, platform: b.platform })),
            indexOpts,
          );
    const pushed = await publish(opts.store, sent, destinations, {
      local,
      openBlob: (desc, signal) => compressor.open(desc, signal),
      ...(opts.destContext ? { destContext: opts.destContext } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    const execution: ExecuteResult = {
      ...built[0]!.execution,
      cacheHits: built.reduce((n, b) => n + b.execution.cacheHits, 0),
      stepsRun: built.reduce((n, b) => n + b.execution.stepsRun, 0),
      warnings: built.flatMap((b) => b.execution.warnings),
      // Each platform resolved the same tags: one entry per name.
      baseImages: [...new Map(built.flatMap((b) => b.execution.baseImages).map((b) => [b.name, b])).values()],
    };
    return {
      image: sends ? sent : local,
      local,
      platform: formatPlatform(built[0]!.platform),
      platforms: built.map((b) => ({ platform: formatPlatform(b.platform), digest: (sends ? b.sent : b.local).digest })),
      platformImages: built.map((b) => {
        const w = sends ? b.sent : b.local;
        return {
          platform: formatPlatform(b.platform),
          descriptor: { mediaType: w.mediaType, digest: w.digest, size: w.descriptor.size },
          configDigest: w.configDigest,
        };
      }),
      destinations,
      pushed,
      execution,
    };
  } finally {
    await compressor.cleanup().catch(() => undefined);
    await context.cleanup();
    await closeNamedContexts(named);
  }
}

const IMAGE_CONTEXT = /^(docker-image|container-image):\/\//;

/** Opens every `--build-context`; on a failure the ones already opened are removed. */
async function openNamedContexts(specs: Record<string, string>, signal?: AbortSignal): Promise<Map<string, NamedContext>> {
  const out = new Map<string, NamedContext>();
  try {
    for (const [rawName, value] of Object.entries(specs)) {
      const name = rawName.toLowerCase();
      if (!/^[a-z0-9][a-z0-9._/:-]*$/.test(name)) throw new InvalidInputError(`--build-context ${rawName}=${value}: "${rawName}" is not a usable name`);
      if (out.has(name)) throw new InvalidInputError(`--build-context ${rawName} is given twice`);
      if (IMAGE_CONTEXT.test(value)) {
        const ref = value.replace(IMAGE_CONTEXT, '');
        if (ref === '') throw new InvalidInputError(`--build-context ${rawName}=${value}: no image named`);
        out.set(name, { kind: 'image', ref });
      } else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value) && !/^(https?|git|ssh):\/\//i.test(value)) {
        throw new InvalidInputError(`--build-context ${rawName}=${value}: want a path, a Git or http(s) URL, or docker-image://REF`);
      } else {
        const context = await openContext(value, signal ? { signal } : {}).catch((err: unknown) => {
          throw err instanceof StevedoreError ? new InvalidInputError(`--build-context ${rawName}: ${err.message}`, { cause: err }) : err;
        });
        out.set(name, { kind: 'files', context });
      }
    }
  } catch (err) {
    await closeNamedContexts(out);
    throw err;
  }
  return out;
}

async function closeNamedContexts(named: ReadonlyMap<string, NamedContext>): Promise<void> {
  for (const n of named.values()) if (n.kind === 'files') await n.context.cleanup().catch(() => undefined);
}
