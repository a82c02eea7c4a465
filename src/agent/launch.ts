/**
 * How the agent starts a container so that it outlives the agent: the runtime's detached monitor
 * (runtime/lifecycle/monitor.ts, our conmon) runs it, streams its output to the k8s-file log and
 * records its exit in the container's record. The agent only asks the runtime for a container's
 * state (runtime/lifecycle/state.ts), so a restarted agent finds running containers again and never
 * runs a finished one twice.
 */
import type { RunOptions } from '../runtime/container.js';
import { startDetached, type DetachedStart } from '../runtime/lifecycle/monitor.js';
import type { ImageStore } from '../runtime/store/index.js';

export type LaunchContainer = (store: ImageStore, options: RunOptions) => Promise<DetachedStart>;

/** The default: the runtime's detached monitor. */
export const launchDetached: LaunchContainer = startDetached;
