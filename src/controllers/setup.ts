/** Wires the reconcilers into a Manager: one client, one event recorder, one metrics registry. */
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { KubeClient } from '../k8s/runtime/client.js';
import { Controller } from '../k8s/runtime/controller.js';
import { EventRecorder } from '../k8s/runtime/events.js';
import { Manager, defaultIdentity } from '../k8s/runtime/manager.js';
import { ControllerMetrics } from '../k8s/runtime/metrics.js';
import type { WorkQueueOptions } from '../k8s/runtime/queue.js';
import { VERSION } from '../util/version.js';
import { ImageBuildReconciler } from './imagebuild.js';
import type { BuildPodOptions } from './imagebuild-pod.js';
import { ImageMirrorMetrics } from './imagemirror-metrics.js';
import { ImageMirrorReconciler } from './imagemirror.js';
import { ContainerRunReconciler, type ContainerRunReconcilerOptions } from './containerrun.js';

export interface ControllerManagerOptions {
  kubeConfig: KubeConfig;
  /** Watch only this namespace (default: all). */
  namespace?: string;
  /** `[host]:port` for /metrics, /healthz, /readyz. */
  metricsAddr?: string;
  /** /metrics only for callers the API server authenticates and allows `get /metrics` (default false). */
  metricsAuth?: boolean;
  /** Lease to elect a leader on; omit to run without election. */
  leaderElection?: { namespace: string; name?: string; identity?: string; leaseDurationMs?: number; renewDeadlineMs?: number; retryPeriodMs?: number };
  workers?: number;
  queue?: WorkQueueOptions;
  /** Separate registries per manager (tests run several in one process); default true. */
  processMetrics?: boolean;
  /** Build Pods of ImageBuilds: the Stevedore image they run and their security settings. */
  buildPods?: Partial<BuildPodOptions>;
  /** Shortest poll interval of an ImageBuild's spec.rebuild.interval (default 1m); see ImageBuildReconcilerOptions. */
  minBaseImagePollMs?: number;
  /** Keys an ImageBuild's nodeSelector and tolerations may name (default none); see ImageBuildReconcilerOptions. */
  buildPodAllowedSchedulingKeys?: readonly string[];
  /** ContainerRun: namespace of the node agents' Leases (default: the leader-election namespace, else default) and timings. */
  containerRun?: Partial<Omit<ContainerRunReconcilerOptions, 'events' | 'log'>>;
  /** ImageMirror: directory holding the volumes of OCI-layout sides, as <root>/<namespace>/<claimName> (`--layout-root`). */
  layoutRoot?: string;
  log: Logger;
}

/** Build Pod defaults: the released Stevedore image, its own user namespace, uid 65532 (as the controller). */
export const DEFAULT_BUILD_POD: BuildPodOptions = {
  image: `ghcr.io/stevedore-dev/stevedore:${VERSION}`,
  userNamespaces: true,
  runAsUser: 65532,
};

export function createControllerManager(o: ControllerManagerOptions): Manager {
  const client = new KubeClient(o.kubeConfig);
  const identity = o.leaderElection?.identity ?? defaultIdentity();
  const log = o.log.child({ identity });
  const metrics = new ControllerMetrics({ processMetrics: o.processMetrics ?? true });
  const manager = new Manager(client, {
    metricsAddr: o.metricsAddr,
    metricsAuth: o.metricsAuth,
    metrics,
    log,
    leaderElection: o.leaderElection ? { name: 'stevedore-controller', ...o.leaderElection, identity } : undefined,
  });
  const events = new EventRecorder(client, { controller: 'stevedore.dev/imagemirror-controller', instance: identity, log });
  const reconciler = new ImageMirrorReconciler(client, { events, log, layoutRoot: o.layoutRoot, metrics: new ImageMirrorMetrics(metrics.registry) });
  manager.add(new Controller(client, reconciler, { namespace: o.namespace, workers: o.workers, queue: o.queue, metrics, log }));
  const buildEvents = new EventRecorder(client, { controller: 'stevedore.dev/imagebuild-controller', instance: identity, log });
  const builds = new ImageBuildReconciler(client, {
    events: buildEvents,
    log,
    pod: { ...DEFAULT_BUILD_POD, ...o.buildPods },
    allowedSchedulingKeys: o.buildPodAllowedSchedulingKeys,
    minBaseImagePollMs: o.minBaseImagePollMs,
  });
  manager.add(new Controller(client, builds, { namespace: o.namespace, workers: o.workers, queue: o.queue, metrics, log }));
  const runEvents = new EventRecorder(client, { controller: 'stevedore.dev/containerrun-controller', instance: identity, log });
  const runs = new ContainerRunReconciler(client, {
    agentNamespace: o.leaderElection?.namespace ?? 'default',
    ...o.containerRun,
    events: runEvents,
    log,
  });
  manager.add(new Controller(client, runs, { namespace: o.namespace, workers: o.workers, queue: o.queue, metrics, log }));
  return manager;
}
