/**
 * The builder engine: `buildImage` runs a Containerfile against a context and writes the image to
 * the local store, registries and layouts. The parser and planner are in `containerfile/`, the
 * context and layer writers in `context/` and `layers/`, step execution in `executor/`, the cache in
 * `cache/`, image assembly and destinations in `output/`.
 */
import { readFile, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import type { CopyResult } from '../copy/copy.js';
import { formatPlatform, type Platform } from '../oci/platform.js';
import type { ImageStore } from '../runtime/store/index.js';
import type { TransportContext } from '../transports/types.js';
import { InvalidInputError } from '../util/errors.js';
import { openContext } from './context/source.js';
import { executeBuild, type ExecuteResult } from './executor/execute.js';
import type { ExecuteOptions } from './executor/types.js';
import { parseDestination, publish, type Destination } from './output/destinations.js';
import { writeImage, writeIndex, type ImageFormat, type WrittenImage } from './output/image.js';

export { BuildStepError, SourceNotFoundError, BuildInterruptedError } from './executor/errors.js';
export { PushFailedError, parseDestination, type Destination } from './output/destinations.js';
export { textReporter } from './output/progress.js';
export { encodeResult, writeResultFile, type FailureReason, type BuildSuccess } from './output/result-file.js';
export type { BuildReporter } from './executor/types.js';

export interface BuildImageOptions extends Omit<ExecuteOptions, 'context' | 'containerfile' | 'store'> {
  store: ImageStore;
  /** A directory, a .tar/.tar.gz, or `-` (a tar on stdin). */
  context: string;
  /** The Containerfile; default `Containerfile`, else `Dockerfile`, in the context. */
  file?: string;
  /** `-t` values: local names, registry names (pushed), `oci:DIR:TAG` and other transports. */
  tags?: string[];
  format?: ImageFormat;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** Several target platforms: each is built, and the image is an index over them. */
  platforms?: Platform[];
  /** Credentials and TLS for pushing. */
  destContext?: TransportContext;
  stdin?: NodeJS.ReadableStream;
}

export interface BuildImageResult {
  /** The image, or for several platforms the index over them. */
  image: WrittenImage;
  /** The first platform (the only one unless several were asked for). */
  platform: string;
  platforms: { platform: string; digest: string }[];
  destinations: Destination[];
  pushed: CopyResult[];
  execution: ExecuteResult;
}

async function findContainerfile(contextDir: string, file: string | undefined): Promise<string> {
  if (file !== undefined) return resolve(file);
  for (const name of ['Containerfile', 'Dockerfile']) {
    const p = join(contextDir, name);
    if (await stat(p).then((s) => s.isFile(), () => false)) return p;
  }
  throw new InvalidInputError(`no Containerfile or Dockerfile in the context ${contextDir}; name one with -f`);
}

export async function buildImage(opts: BuildImageOptions): Promise<BuildImageResult> {
  // Parse destinations first: a bad -t fails before any work.
  const destinations = (opts.tags ?? []).map(parseDestination);
  const explicitFile = opts.file !== undefined ? resolve(opts.file) : undefined;
  const context = await openContext(opts.context, { ...(explicitFile ? { containerfile: explicitFile } : {}), ...(opts.stdin ? { stdin: opts.stdin } : {}) });
  try {
    const path = await findContainerfile(context.dir, explicitFile);
    const text = await readFile(path, 'utf8').catch((err: unknown) => {
      throw new InvalidInputError(`reading the Containerfile ${path}: ${(err as Error).message}`);
    });
    const targets: (Platform | undefined)[] = opts.platforms && opts.platforms.length > 0 ? opts.platforms : [opts.platform];
    const built: { image: WrittenImage; platform: Platform; execution: ExecuteResult }[] = [];
    for (const platform of targets) {
      const execution = await executeBuild({
        ...opts,
        ...(platform ? { platform } : {}),
        context,
        containerfile: { text, name: explicitFile ? opts.file! : basename(path) },
      });
      opts.signal?.throwIfAborted();
      const image = await writeImage(opts.store.layout, execution.state, {
        format: opts.format ?? 'oci',
        created: execution.created,
        ...(opts.labels ? { labels: opts.labels } : {}),
        ...(opts.annotations && targets.length === 1 ? { annotations: opts.annotations } : {}),
      });
      built.push({ image, platform: execution.state.platform, execution });
    }
    const image = built.length === 1 ? built[0]!.image : await writeIndex(opts.store.layout, built, { format: opts.format ?? 'oci', ...(opts.annotations ? { annotations: opts.annotations } : {}) });
    const pushed = await publish(opts.store, image, destinations, {
      ...(opts.destContext ? { destContext: opts.destContext } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    const execution: ExecuteResult = {
      ...built[0]!.execution,
      cacheHits: built.reduce((n, b) => n + b.execution.cacheHits, 0),
      stepsRun: built.reduce((n, b) => n + b.execution.stepsRun, 0),
      warnings: built.flatMap((b) => b.execution.warnings),
    };
    return {
      image,
      platform: formatPlatform(built[0]!.platform),
      platforms: built.map((b) => ({ platform: formatPlatform(b.platform), digest: b.image.digest })),
      destinations,
      pushed,
      execution,
    };
  } finally {
    await context.cleanup();
  }
}
