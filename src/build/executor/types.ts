import type { PullPolicy, RootfsMode } from '../../runtime/store/index.js';
import type { ImageStore } from '../../runtime/store/index.js';
import type { RuntimeName } from '../../runtime/oci-runtime.js';
import type { Platform } from '../../oci/platform.js';
import type { TransportContext } from '../../transports/types.js';
import type { BuildContext } from '../context/source.js';
import type { BuiltLayer } from './state.js';
import type { SourcePolicy } from '../source-policy.js';
import type { RootfsExport } from '../output/export.js';
import type { LayerCompressor } from '../output/compress.js';

/** What the executor reports as it goes; the CLI prints it like `buildah bud`. */
export interface BuildReporter {
  /** A step starts: `[stage/stages] STEP step/steps: text`. */
  step(info: { stage: number; stages: number; stageName?: string; step: number; steps: number; text: string }): void;
  /** The step's result came from the cache. */
  cached(layer: BuiltLayer | undefined): void;
  /** The step wrote a layer (or changed no file: undefined) in `ms`. */
  layer(layer: BuiltLayer | undefined, ms: number): void;
  /** Output of a RUN. */
  output(chunk: Buffer): void;
  warn(message: string): void;
}

export const SILENT_REPORTER: BuildReporter = {
  step: () => {},
  cached: () => {},
  layer: () => {},
  output: () => {},
  warn: () => {},
};

/** Where a build secret comes from: a file, or a value (never logged, never in a cache key). */
export type SecretSource = { file: string } | { value: string };

/**
 * A `--build-context NAME=VALUE`: an image that `FROM NAME`, `COPY --from=NAME` and
 * `RUN --mount=from=NAME` use instead of the image NAME (`docker-image://REF`), or a directory of
 * files (a path, or a Git or http URL) that COPY --from and RUN --mount read like the main context.
 */
export type NamedContext = { kind: 'image'; ref: string } | { kind: 'files'; context: BuildContext };

export interface ExecuteOptions {
  store: ImageStore;
  context: BuildContext;
  /** The Containerfile's text and the name used in messages; `more`: files joined after it (`-f A -f B`). */
  containerfile: { text: string; name: string; more?: readonly { text: string; file: string }[] };
  target?: string;
  buildArgs?: Record<string, string>;
  /** The platform the image is for (the host's by default). */
  platform?: Platform;
  /** Unix seconds: image and history `created`, and file mtimes clamped (SOURCE_DATE_EPOCH). */
  timestamp?: number;
  /** Skip the cache lookups (results are still stored). */
  noCache?: boolean;
  /** `--secret`: id → a host file (`src=PATH`) or a value (`env=VAR`, read by the caller). */
  secrets?: ReadonlyMap<string, SecretSource>;
  /** `--source-policy-file`: images and URLs are checked (and maybe pinned) against it. */
  sourcePolicy?: SourcePolicy;
  /** `--output`: the target stage's files written out as a directory or a tar file. */
  exports?: readonly RootfsExport[];
  /** `--squash`: the target stage's new layers become one (its base image's layers stay as they are). */
  squash?: boolean;
  /** `--build-context`: by name (lower case, as stage names). */
  namedContexts?: ReadonlyMap<string, NamedContext>;
  /** `--ssh`: id (`default` unless named) → an SSH agent socket on this host, for RUN --mount=type=ssh. */
  sshAgents?: ReadonlyMap<string, string>;
  pull?: PullPolicy;
  /** Resolve each registry FROM image to its digest (a HEAD before the pull), for ExecuteResult.baseImages. */
  reportBaseImages?: boolean;
  /** Registry cache repositories (`--cache-from`, `--cache-to`). */
  cacheFrom?: string[];
  cacheTo?: string[];
  /** Credentials and TLS for pulling base images (and the registry cache). */
  pullContext?: TransportContext;
  runtime?: RuntimeName;
  /** How RUN gets a writable rootfs: an overlay where it can be mounted (`auto`, the default), or always a copy (tree diff). */
  rootfsMode?: RootfsMode;
  /** Compresses layers that leave the machine (the registry cache); one per build, shared with the output. */
  compressor?: LayerCompressor;
  reporter?: BuildReporter;
  signal?: AbortSignal;
}
