import { access, constants } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { rootLogger } from '../../util/log.js';
import { NetworkSetupError } from './errors.js';
import { createNetns, ipInNetns, removeNetns } from './netns.js';
import { startPasta } from './pasta.js';
import { checkPortConflicts, type PortMapping } from './ports.js';
import type { HelperProcess } from './process.js';
import { startSlirp } from './slirp.js';

export { NetworkSetupError } from './errors.js';
export { parsePublish, checkPortConflicts, portMappings, type DeclaredPort, type PortMapping } from './ports.js';
export { parseAddHost, parseDns, writeEtcFiles, hostsFile, resolvConf, type HostEntry, type EtcOptions } from './etc.js';

const log = rootLogger.child({ component: 'network' });

/** `--network`: podman's names. `private` picks pasta, or slirp4netns where pasta is missing or fails. */
export const NETWORK_MODES = ['none', 'host', 'private', 'pasta', 'slirp4netns'] as const;
export type NetworkMode = (typeof NETWORK_MODES)[number];
export type PrivateDriver = 'private' | 'pasta' | 'slirp4netns';

export function isPrivateNetwork(mode: NetworkMode | undefined): mode is PrivateDriver {
  return mode === 'private' || mode === 'pasta' || mode === 'slirp4netns';
}

/** The container side of every private network (slirp4netns's defaults, used for pasta too). */
export const CONTAINER_ADDRESS = '10.0.2.100';
/** The host gateway: connections to it reach the host's loopback (127.0.0.1). */
export const HOST_GATEWAY = '10.0.2.2';
export const CONTAINER_IFNAME = 'eth0';
const TUN = '/dev/net/tun';

export interface PrivateNetworkOptions {
  driver: PrivateDriver;
  ports?: readonly PortMapping[];
  /** A directory of the container's bundle: holds the namespace file, PID file and API socket. */
  dir: string;
}

export interface PrivateNetwork {
  driver: 'pasta' | 'slirp4netns';
  /** The namespace the container joins (config.json `linux.namespaces[].path`). */
  nsPath: string;
  address: string;
  gateway: string;
  /** Stops the helper and deletes the namespace; idempotent. */
  close(): Promise<void>;
}

async function onPath(cmd: string): Promise<boolean> {
  for (const d of (process.env.PATH ?? '').split(delimiter)) {
    if (
      d &&
      (await access(join(d, cmd), constants.X_OK).then(
        () => true,
        () => false,
      ))
    )
      return true;
  }
  return false;
}

/**
 * A network namespace of the container's own with a user-mode network: one interface with
 * CONTAINER_ADDRESS, one route (to HOST_GATEWAY, which reaches the host's loopback) and nothing
 * else, so the container can reach the host and nothing beyond it; published ports forwarded
 * from the host into it. The same in both modes: as root and rootless, the helper runs as the
 * engine's user (root of its namespace).
 */
export async function setupPrivateNetwork(o: PrivateNetworkOptions): Promise<PrivateNetwork> {
  const ports = o.ports ?? [];
  checkPortConflicts(ports);
  // Both helpers open the tap device as the engine's user: rootless, that needs the mode udev gives it.
  await access(TUN, constants.R_OK | constants.W_OK).catch((err: unknown) => {
    throw new NetworkSetupError(
      `${TUN} is not readable and writable by this user (uid ${process.getuid?.()}): a private network needs it (mode 0666, as Debian's udev rules set it)`,
      { cause: err },
    );
  });
  const nsPath = join(o.dir, 'netns');
  await createNetns(nsPath);
  let helper: HelperProcess | undefined;
  let driver: PrivateNetwork['driver'] = o.driver === 'slirp4netns' ? 'slirp4netns' : 'pasta';
  try {
    const common = { nsPath, dir: o.dir, ifname: CONTAINER_IFNAME, address: CONTAINER_ADDRESS, ports };
    if (driver === 'pasta') {
      try {
        if (o.driver === 'private' && !(await onPath('pasta'))) throw new NetworkSetupError('pasta is not installed');
        helper = await startPasta({ ...common, gateway: HOST_GATEWAY });
      } catch (err) {
        if (o.driver !== 'private') throw err;
        // pasta refuses to start on a host with no routable interface; slirp4netns needs none.
        log.debug({ err: (err as Error).message }, 'pasta unavailable, using slirp4netns');
        driver = 'slirp4netns';
      }
    }
    if (!helper) helper = await startSlirp(common);
    await ipInNetns(nsPath, ['link', 'set', 'lo', 'up']);
    await ipInNetns(nsPath, ['link', 'set', CONTAINER_IFNAME, 'mtu', '65520', 'up']);
    await ipInNetns(nsPath, ['address', 'add', `${CONTAINER_ADDRESS}/32`, 'dev', CONTAINER_IFNAME]);
    await ipInNetns(nsPath, ['route', 'add', `${HOST_GATEWAY}/32`, 'dev', CONTAINER_IFNAME]);
  } catch (err) {
    await helper?.stop();
    await removeNetns(nsPath);
    throw err;
  }
  log.debug({ driver, pid: helper.pid, ports: ports.length }, 'private network ready');
  let closed = false;
  const h = helper;
  return {
    driver,
    nsPath,
    address: CONTAINER_ADDRESS,
    gateway: HOST_GATEWAY,
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      await h.stop();
      await removeNetns(nsPath);
    },
  };
}
