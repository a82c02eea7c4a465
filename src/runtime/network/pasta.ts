import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pastaPortSpec, type PortMapping } from './ports.js';
import { startHelper, waitReady, type HelperProcess } from './process.js';

export interface PastaOptions {
  nsPath: string;
  /** Directory for pasta's PID file. */
  dir: string;
  ifname: string;
  address: string;
  gateway: string;
  ports: readonly PortMapping[];
}

/**
 * The pasta command line: attach to the namespace at nsPath (no user namespace of its own), IPv4
 * only, the container's address and gateway given (never the host's), ports published from the
 * host to the namespace only (`-t`/`-u`), no forwarding from the namespace to the host's loopback
 * (`-T none -U none`, else every port bound on the host's 127.0.0.1 would be reachable as the
 * container's own localhost). Addresses and routes are set by the engine, not `--config-net`,
 * so that the only route is to the gateway (see docs/networking.md).
 */
export function pastaArgs(o: PastaOptions, pidFile: string): string[] {
  const tcp = o.ports.filter((p) => p.protocol === 'tcp');
  const udp = o.ports.filter((p) => p.protocol === 'udp');
  return [
    '--foreground',
    '--quiet',
    '--ipv4-only',
    // As root, pasta would switch to nobody before joining the namespace, and then cannot join it.
    ...(process.geteuid?.() === 0 ? ['--runas', '0'] : []),
    '--ns-ifname',
    o.ifname,
    '--address',
    o.address,
    '--netmask',
    '24',
    '--gateway',
    o.gateway,
    ...(tcp.length > 0 ? tcp.flatMap((p) => ['-t', pastaPortSpec(p)]) : ['-t', 'none']),
    ...(udp.length > 0 ? udp.flatMap((p) => ['-u', pastaPortSpec(p)]) : ['-u', 'none']),
    '-T',
    'none',
    '-U',
    'none',
    '--netns',
    o.nsPath,
    '--pid',
    pidFile,
  ];
}

/** Starts pasta on the namespace and resolves once it has bound every published port. */
export async function startPasta(o: PastaOptions): Promise<HelperProcess> {
  const pidFile = join(o.dir, 'pasta.pid');
  const h = startHelper('pasta', pastaArgs(o, pidFile));
  // pasta writes its PID file once initialisation (port binding included) is done.
  await waitReady(h, 'pasta', async () => (await readFile(pidFile, 'utf8').catch(() => '')).trim() !== '');
  return h;
}
