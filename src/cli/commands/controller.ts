import { readFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { rootLogger } from '../../util/log.js';
import { signalOnInterrupt } from '../signals.js';
import { parseBool, parsePositiveInt } from '../options.js';
import { InvalidInputError } from '../../util/errors.js';
import { parseDuration } from '../../util/duration.js';
import { parseReference } from '../../oci/reference.js';

interface ControllerFlags {
  kubeconfig?: string;
  metricsAddr: string;
  metricsAuth: boolean;
  leaderElect?: boolean;
  leaderElectionNamespace?: string;
  leaderElectionId: string;
  namespace?: string;
  workers: number;
  buildImage?: string;
  buildUserNamespaces?: boolean;
  buildRunAsUser?: number;
  buildSeccompProfile?: string;
  layoutRoot?: string;
  buildPodAllowedSchedulingKeys?: string[];
  buildCacheRepository?: string;
  minBaseImagePoll?: number;
  buildSourcePolicy?: string;
}

/** `a,b,c` → ['a','b','c'] (repeatable: values accumulate). */
function keyList(v: string, prev: string[] = []): string[] {
  return [
    ...prev,
    ...v
      .split(',')
      .map((k) => k.trim())
      .filter(Boolean),
  ];
}

/** `RuntimeDefault`, `Unconfined`, or `localhost/<profile>` (a profile file on each node). */
function seccompProfile(v: string | undefined): { type: 'RuntimeDefault' | 'Localhost' | 'Unconfined'; localhostProfile?: string } | undefined {
  if (v === undefined) return undefined;
  if (v === 'RuntimeDefault' || v === 'Unconfined') return { type: v };
  if (v.startsWith('localhost/')) return { type: 'Localhost', localhostProfile: v.slice('localhost/'.length) };
  throw new InvalidInputError(`--build-seccomp-profile must be RuntimeDefault, Unconfined or localhost/<profile>, got "${v}"`);
}

/** A cache repository template: a repository name once `{namespace}` and `{name}` are replaced (no tag, no digest). */
function cacheRepositoryTemplate(v: string): string {
  const sample = v.replaceAll('{namespace}', 'ns').replaceAll('{name}', 'name');
  let ref: ReturnType<typeof parseReference>;
  try {
    ref = parseReference(sample);
  } catch (err) {
    throw new InvalidInputError(`--build-cache-repository "${v}": ${(err as Error).message}`);
  }
  if (ref.tag !== undefined || ref.digest !== undefined || /[{}]/.test(sample)) {
    throw new InvalidInputError(
      `--build-cache-repository "${v}": must be a repository (no tag or digest), with {namespace} and {name} as its only placeholders`,
    );
  }
  return v;
}

/**
 * The administrator's source policy, read and checked once, as the builder will read it: its
 * compact JSON goes to the build Pods.
 */
async function readSourcePolicy(file: string): Promise<string> {
  const { SourcePolicy } = await import('../../build/source-policy.js');
  const path = resolve(file);
  const text = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new InvalidInputError(`--build-source-policy: ${path}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`, { cause: err });
  });
  try {
    return SourcePolicy.parse(text, path).serialize();
  } catch (err) {
    throw new InvalidInputError(`--build-source-policy: ${(err as Error).message}`, { cause: err });
  }
}

/** A Go duration, at least 1s (a shorter base-image poll would make every ImageBuild a registry load generator). */
function pollMinimum(v: string): number {
  const ms = parseDuration(v);
  if (ms < 1000) throw new InvalidInputError(`--min-base-image-poll "${v}": must be at least 1s`);
  return ms;
}

/** The namespace a Pod runs in (from its ServiceAccount mount), else $POD_NAMESPACE, else default. */
function ownNamespace(): string {
  try {
    return readFileSync('/var/run/secrets/kubernetes.io/serviceaccount/namespace', 'utf8').trim();
  } catch {
    return process.env.POD_NAMESPACE || 'default';
  }
}

export function registerController(program: Command): void {
  program
    .command('controller')
    .description('Run the Kubernetes controllers for ImageMirror and ImageBuild (until SIGTERM)')
    .option('--kubeconfig <path>', 'kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster)')
    .option('--metrics-addr <addr>', 'address for /metrics, /healthz and /readyz', ':8080')
    .option(
      '--metrics-auth <bool>',
      'serve /metrics only to bearer tokens the API server authenticates (TokenReview) and allows get on /metrics (SubjectAccessReview); probes stay open',
      parseBool,
      true,
    )
    .option('--leader-elect', 'elect a leader on a Lease so only one replica reconciles')
    .option('--leader-election-namespace <ns>', 'namespace of the Lease (default: the Pod’s own)')
    .option('--leader-election-id <name>', 'name of the Lease', 'stevedore-controller')
    .option('--namespace <ns>', 'watch only this namespace (default: all)')
    .option('--workers <n>', 'concurrent reconciles (4: 1000 unchanged ImageMirrors Ready in 50 s on 2 cores, hack/bench/controller.sh)', parsePositiveInt, 4)
    .option('--build-image <ref>', 'Stevedore image that ImageBuild Pods run (default: the released image)')
    .option('--build-user-namespaces <bool>', 'run build Pods with hostUsers: false (needs user-namespace support on the nodes)', parseBool)
    .option('--build-run-as-user <uid>', 'uid and gid of build Pods', parsePositiveInt)
    .option('--build-seccomp-profile <profile>', 'seccomp of build Pods: RuntimeDefault (default), Unconfined, or localhost/<profile>')
    .option(
      '--build-pod-allowed-scheduling-keys <keys>',
      'node label and taint keys an ImageBuild’s nodeSelector and tolerations may name, comma-separated (default: none; control-plane keys are always refused)',
      keyList,
    )
    .option(
      '--build-cache-repository <template>',
      'cache repository of ImageBuilds with spec.cache: {} and no repository, {namespace} and {name} replaced (default: <output repository>/cache)',
      cacheRepositoryTemplate,
    )
    .option(
      '--build-source-policy <file>',
      'a BuildKit source policy (JSON) every Containerfile build obeys (pin or deny images and URLs); script builds are refused while it is set',
    )
    .option('--min-base-image-poll <duration>', 'shortest spec.rebuild.interval honoured when polling base images (default 1m)', pollMinimum)
    .option('--layout-root <dir>', 'ImageMirror OCI layouts: volumes mounted here as <namespace>/<claimName> (default: layouts unavailable)')
    .action(async (o: ControllerFlags) => {
      // Loaded here, not at the top: @kubernetes/client-node is slow to import, and every other
      // verb (copy, inspect, run) must not pay for it at start-up.
      // Checked before anything starts: a policy that does not parse would fail every build.
      const sourcePolicy = o.buildSourcePolicy !== undefined ? await readSourcePolicy(o.buildSourcePolicy) : undefined;
      const { KubeConfig } = await import('@kubernetes/client-node');
      const { createControllerManager } = await import('../../controllers/setup.js');
      const kubeConfig = new KubeConfig();
      if (o.kubeconfig) kubeConfig.loadFromFile(o.kubeconfig);
      else kubeConfig.loadFromDefault();
      if (rootLogger.levelVal > 30 && !process.env.STEVEDORE_LOG_LEVEL) rootLogger.level = 'info';
      const manager = createControllerManager({
        kubeConfig,
        namespace: o.namespace,
        metricsAddr: o.metricsAddr,
        metricsAuth: o.metricsAuth,
        workers: o.workers,
        ...(o.layoutRoot ? { layoutRoot: resolve(o.layoutRoot) } : {}),
        ...(o.buildPodAllowedSchedulingKeys ? { buildPodAllowedSchedulingKeys: o.buildPodAllowedSchedulingKeys } : {}),
        ...(o.minBaseImagePoll !== undefined ? { minBaseImagePollMs: o.minBaseImagePoll } : {}),
        buildPods: {
          ...(o.buildImage ? { image: o.buildImage } : {}),
          ...(o.buildUserNamespaces !== undefined ? { userNamespaces: o.buildUserNamespaces } : {}),
          ...(o.buildRunAsUser !== undefined ? { runAsUser: o.buildRunAsUser } : {}),
          ...(o.buildSeccompProfile ? { seccompProfile: seccompProfile(o.buildSeccompProfile) } : {}),
          ...(o.buildCacheRepository ? { cacheRepository: o.buildCacheRepository } : {}),
          ...(sourcePolicy ? { sourcePolicy } : {}),
        },
        leaderElection: o.leaderElect ? { namespace: o.leaderElectionNamespace ?? ownNamespace(), name: o.leaderElectionId } : undefined,
        log: rootLogger,
      });
      await manager.run(signalOnInterrupt());
    });
}
