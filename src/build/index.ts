/**
 * The builder engine: `buildImage` runs a Containerfile against a context and writes the image to
 * the local store, registries and layouts. The parser and planner are in `containerfile/`, the
 * context and layer writers in `context/` and `layers/`, step execution in `executor/`, the cache in
 * `cache/`, image assembly and destinations in `output/`.
 */
import { readFile, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import type { CopyResult } from '../copy/copy.js';
import { formatPlatform } from '../oci/platform.js';
import type { ImageStore } from '../runtime/store/index.js';
import type { TransportContext } from '../transports/types.js';
import { InvalidInputError } from '../util/errors.js';
import { openContext } from './context/source.js';
import { executeBuild, type ExecuteResult } from './executor/execute.js';
import type { ExecuteOptions } from './executor/types.js';
import { parseDestination, publish, type Destination } from './output/destinations.js';
import { writeImage, type ImageFormat, type WrittenImage } from './output/image.js';

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
  /** Credentials and TLS for pushing. */
  destContext?: TransportContext;
  stdin?: NodeJS.ReadableStream;
}

export interface BuildImageResult {
  image: WrittenImage;
  platform: string;
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
    const execution = await executeBuild({ ...opts, context, containerfile: { text, name: explicitFile ? opts.file! : basename(path) } });
    opts.signal?.throwIfAborted();
    const image = await writeImage(opts.store.layout, execution.state, {
      format: opts.format ?? 'oci',
      created: execution.created,
      ...(opts.labels ? { labels: opts.labels } : {}),
      ...(opts.annotations ? { annotations: opts.annotations } : {}),
    });
    const pushed = await publish(opts.store, image, destinations, {
      ...(opts.destContext ? { destContext: opts.destContext } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    return { image, platform: formatPlatform(execution.state.platform), destinations, pushed, execution };
  } finally {
    await context.cleanup();
  }
}
