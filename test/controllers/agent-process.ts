/**
 * A real node agent (`node bin/stevedore.js agent`) as a separate process for the ContainerRun
 * suites, with the short lease, poll and back-off intervals that keep the tests quick; its output
 * is appended to a log file the suites show on failure.
 */
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../cli/stevedore.js';
import { spawnManaged, type ManagedProcess } from '../../hack/lib/harness/procs.js';

export interface AgentProcessOptions {
  nodeName: string;
  kubeconfig: string;
  leaseNamespace: string;
  /** Watch only this namespace (default: all). */
  namespace?: string;
  root: string;
  log: string;
  /** Further flags (node labels, policy, grace period, ...). */
  extraArgs?: string[];
}

export async function startAgentProcess(o: AgentProcessOptions): Promise<ManagedProcess> {
  const fd = openSync(o.log, 'a');
  try {
    return await spawnManaged(
      process.execPath,
      [
        join(REPO_ROOT, 'bin', 'stevedore.js'),
        '--log-level',
        'info',
        'agent',
        '--node-name',
        o.nodeName,
        '--kubeconfig',
        o.kubeconfig,
        '--lease-namespace',
        o.leaseNamespace,
        ...(o.namespace ? ['--namespace', o.namespace] : []),
        '--root',
        o.root,
        '--metrics-addr',
        '127.0.0.1:0',
        '--lease-duration',
        '3s',
        '--renew-interval',
        '500ms',
        '--restart-backoff',
        '300ms',
        '--poll-interval',
        '250ms',
        ...(o.extraArgs ?? []),
      ],
      { output: [fd, fd] },
    );
  } finally {
    closeSync(fd);
  }
}
