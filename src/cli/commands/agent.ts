import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { parseDuration } from '../../util/duration.js';
import { parseIdRange } from '../../runtime/idmap.js';
import { needsUserNamespace, reexecInUserNamespace } from '../../runtime/rootless.js';
import { loadPolicy } from '../../policy/parse.js';
import { InvalidInputError } from '../../util/errors.js';
import { rootLogger } from '../../util/log.js';
import { parsePositiveInt } from '../options.js';
import { signalOnInterrupt } from '../signals.js';

interface AgentFlags {
  kubeconfig?: string;
  nodeName?: string;
  leaseNamespace?: string;
  nodeLabels?: string;
  readNodeLabels: boolean;
  root?: string;
  runtime: string;
  namespace?: string;
  metricsAddr: string;
  workers: number;
  leaseDuration: string;
  renewInterval?: string;
  stopGracePeriod: string;
  restartBackoff: string;
  pollInterval: string;
  policy?: string;
  usernsRange?: string;
  usernsSize?: number;
  diskCheckInterval: string;
}

/** The namespace a Pod runs in (from its ServiceAccount mount), else $POD_NAMESPACE, else default. */
function ownNamespace(): string {
  try {
    return readFileSync('/var/run/secrets/kubernetes.io/serviceaccount/namespace', 'utf8').trim();
  } catch {
    return process.env.POD_NAMESPACE || 'default';
  }
}

/** `k=v,k2=v2` (as the kubelet's --node-labels). */
export function parseLabels(text: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (text ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new InvalidInputError(`--node-labels: "${part}" is not KEY=VALUE`);
    out[part.slice(0, eq)] = part.slice(eq + 1);
  }
  return out;
}

function durationMs(flag: string, value: string): number {
  try {
    return parseDuration(value);
  } catch {
    throw new InvalidInputError(`${flag}: "${value}" is not a duration like 500ms, 10s or 1m`);
  }
}

export function registerAgent(program: Command): void {
  program
    .command('agent')
    .description('Run the node agent: heartbeat Lease, and the ContainerRuns bound to this node (until SIGTERM)')
    .option('--node-name <name>', 'this node’s name (default: $NODE_NAME)')
    .option('--kubeconfig <path>', 'kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster)')
    .option('--lease-namespace <ns>', 'namespace of the heartbeat Lease, the controller’s (default: the Pod’s own)')
    .option('--node-labels <k=v,...>', 'node labels for nodeSelector matching, merged over the Node object’s')
    .option('--no-read-node-labels', 'do not read the Node object’s labels')
    .option('--root <dir>', 'container store (default: $STEVEDORE_ROOT, /var/lib/stevedore for root)')
    .option('--runtime <runc|crun>', 'OCI runtime for runs that name none', 'runc')
    .option('--namespace <ns>', 'run only ContainerRuns of this namespace (default: all)')
    .option('--metrics-addr <addr>', 'address for /metrics, /healthz and /readyz', ':8081')
    .option('--workers <n>', 'runs started or finished concurrently', parsePositiveInt, 4)
    .option('--lease-duration <d>', 'how long a heartbeat counts (the controller marks runs Unknown after)', '40s')
    .option('--renew-interval <d>', 'heartbeat interval (default: a quarter of --lease-duration)')
    .option('--stop-grace-period <d>', 'SIGTERM to SIGKILL on timeout or delete', '10s')
    .option('--restart-backoff <d>', 'first restart delay for restartPolicy OnFailure (doubles, 5m cap)', '10s')
    .option('--poll-interval <d>', 'how often running containers are checked (exit, log tail)', '1s')
    .option('--policy <file>', 'containers-policy.json every run’s image must satisfy (checked before the pull; refused: PolicyDenied)')
    .option(
      '--userns-range <start:count>',
      'host ids a root agent gives the runs’ user namespaces (default 65536:67108864; a rootless agent uses its subordinate ids)',
    )
    .option('--disk-check-interval <d>', 'how often disk emptyDirs are measured against their sizeLimit (over: the run is evicted)', '10s')
    .option('--userns-size <n>', 'ids per run’s user namespace', parsePositiveInt, 65536)
    .action(async (o: AgentFlags) => {
      const nodeName = o.nodeName ?? process.env.NODE_NAME;
      if (!nodeName) throw new InvalidInputError('--node-name (or $NODE_NAME) is required');
      if (o.runtime !== 'runc' && o.runtime !== 'crun') throw new InvalidInputError(`--runtime must be runc or crun, got "${o.runtime}"`);
      const leaseSeconds = Math.max(1, Math.round(durationMs('--lease-duration', o.leaseDuration) / 1000));
      const opts = {
        renewMs: o.renewInterval ? durationMs('--renew-interval', o.renewInterval) : undefined,
        stopGraceSeconds: durationMs('--stop-grace-period', o.stopGracePeriod) / 1000,
        restartBaseMs: durationMs('--restart-backoff', o.restartBackoff),
        pollMs: durationMs('--poll-interval', o.pollInterval),
      };
      // A policy that cannot be read stops the agent here: it never runs images unchecked instead.
      const policy = o.policy ? await loadPolicy(o.policy) : undefined;
      const usernsRange = o.usernsRange ? parseIdRange(o.usernsRange, '--userns-range') : undefined;
      // A non-root agent runs as root of a user namespace over its subuid range, as `run` does.
      if (needsUserNamespace()) process.exit(await reexecInUserNamespace());
      // Loaded here: @kubernetes/client-node is slow to import and no other verb needs it.
      const [{ KubeConfig }, { createAgent }, { ImageStore }] = await Promise.all([
        import('@kubernetes/client-node'),
        import('../../agent/agent.js'),
        import('../../runtime/store/index.js'),
      ]);
      const kubeConfig = new KubeConfig();
      if (o.kubeconfig) kubeConfig.loadFromFile(o.kubeconfig);
      else kubeConfig.loadFromDefault();
      if (rootLogger.levelVal > 30 && !process.env.STEVEDORE_LOG_LEVEL) rootLogger.level = 'info';
      const store = await ImageStore.open(o.root);
      const agent = await createAgent({
        kubeConfig,
        nodeName,
        leaseNamespace: o.leaseNamespace ?? ownNamespace(),
        nodeLabels: parseLabels(o.nodeLabels),
        readNodeLabels: o.readNodeLabels,
        leaseDurationSeconds: leaseSeconds,
        renewMs: opts.renewMs,
        store,
        runtime: o.runtime,
        stopGraceSeconds: opts.stopGraceSeconds,
        restartBackoff: { baseMs: opts.restartBaseMs, maxMs: 300_000 },
        pollMs: opts.pollMs,
        namespace: o.namespace,
        metricsAddr: o.metricsAddr,
        workers: o.workers,
        policy,
        usernsRange,
        usernsSize: o.usernsSize,
        diskCheckMs: durationMs('--disk-check-interval', o.diskCheckInterval),
        log: rootLogger,
      });
      if (o.policy) rootLogger.info({ policy: o.policy }, 'enforcing the node image policy');
      await agent.run(signalOnInterrupt());
    });
}
