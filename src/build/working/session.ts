import { randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { BuildPlan } from '../containerfile/index.js';
import { LocalBuildCache } from '../cache/local.js';
import { NO_IGNORE } from '../context/ignore.js';
import { BuildRun } from '../executor/steps.js';
import { SILENT_REPORTER, type BuildReporter, type ExecuteOptions } from '../executor/types.js';
import type { ImageStore, RootfsMode } from '../../runtime/store/index.js';
import type { RuntimeName } from '../../runtime/oci-runtime.js';
import type { TransportContext } from '../../transports/types.js';

/** What every working-container verb may be given. */
export interface WorkingOptions {
  store: ImageStore;
  /** Credentials and TLS for pulling the base image. */
  pullContext?: TransportContext;
  pull?: ExecuteOptions['pull'];
  runtime?: RuntimeName;
  rootfsMode?: RootfsMode;
  /** Output of `run` (stdout and stderr of the command, as they come). */
  output?: (chunk: Buffer) => void;
  warn?: (message: string) => void;
  signal?: AbortSignal;
}

/** A working container's verbs have no Containerfile: an empty plan stands in for one. */
const NO_PLAN = { file: 'buildah', escape: '\\', stages: [], globalArgs: new Map(), buildArgs: new Map(), unusedBuildArgs: [] } as unknown as BuildPlan;

/**
 * A BuildRun for one verb (the same snapshots, layer writing and RUN containers as `build`), with
 * `contextDir` as where copy sources are read from. Never cached: `run -- date` runs every time,
 * as buildah's. The scratch dir is removed when `fn` ends.
 */
export async function withBuildRun<T>(o: WorkingOptions, contextDir: string, fn: (run: BuildRun) => Promise<T>): Promise<T> {
  const workDir = join(o.store.root, 'tmp', `working-${randomBytes(8).toString('hex')}`);
  await mkdir(workDir, { recursive: true });
  const reporter: BuildReporter = { ...SILENT_REPORTER, output: (c) => o.output?.(c), warn: (w) => o.warn?.(w) };
  const opts: ExecuteOptions = {
    store: o.store,
    context: { dir: contextDir, ignore: NO_IGNORE, cleanup: async () => {} },
    containerfile: { text: '', name: 'buildah' },
    noCache: true,
    reporter,
    ...(o.pullContext ? { pullContext: o.pullContext } : {}),
    ...(o.pull ? { pull: o.pull } : {}),
    ...(o.runtime ? { runtime: o.runtime } : {}),
    ...(o.rootfsMode ? { rootfsMode: o.rootfsMode } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
  };
  try {
    return await fn(new BuildRun(opts, NO_PLAN, new LocalBuildCache(o.store.root, o.store.layout), workDir));
  } finally {
    await rm(workDir, { recursive: true, force: true }).catch(() => undefined);
  }
}
