import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NetworkSetupError } from './errors.js';
import type { PortMapping } from './ports.js';
import { startHelper, waitReady, type HelperProcess } from './process.js';

export interface SlirpOptions {
  nsPath: string;
  ifname: string;
  address: string;
  ports: readonly PortMapping[];
}

/**
 * slirp4netns on the namespace at nsPath, with its built-in DNS forwarder off (10.0.2.3 would
 * reach the host's resolvers) and an API socket for port forwarding. Its gateway 10.0.2.2 reaches
 * the host's loopback. The tap device is configured by the engine (no `--configure`).
 */
export function slirpArgs(o: SlirpOptions, apiSocket: string): string[] {
  return ['--netns-type=path', '--mtu=65520', '--disable-dns', '--enable-seccomp', `--api-socket=${apiSocket}`, '--ready-fd=3', o.nsPath, o.ifname];
}

/** One request on slirp4netns's API socket (a JSON object per connection). */
function apiCall(socket: string, request: object): Promise<{ return?: unknown; error?: { desc?: string } }> {
  return new Promise((resolve, reject) => {
    const c = connect(socket);
    let data = '';
    c.on('connect', () => c.end(JSON.stringify(request)));
    c.on('data', (b: Buffer) => (data += b.toString()));
    c.on('error', reject);
    c.on('close', () => {
      try {
        resolve(JSON.parse(data) as { return?: unknown; error?: { desc?: string } });
      } catch (err) {
        reject(new NetworkSetupError(`slirp4netns API: unreadable answer "${data.slice(0, 200)}"`, { cause: err }));
      }
    });
  });
}

/**
 * Starts slirp4netns on the namespace and publishes the ports through its API. The API socket
 * lives in a short private directory (a socket path is limited to 107 bytes; bundle paths are
 * longer), removed once the ports are set up.
 */
export async function startSlirp(o: SlirpOptions): Promise<HelperProcess> {
  const sockDir = await mkdtemp(join(tmpdir(), 'stevedore-slirp-'));
  const apiSocket = join(sockDir, 'api.sock');
  const h = startHelper('slirp4netns', slirpArgs(o, apiSocket), ['ignore', 'ignore', 'pipe', 'pipe']);
  let ready = false;
  h.child.stdio[3]?.on('data', () => (ready = true));
  try {
    await waitReady(h, 'slirp4netns', async () => ready);
    for (const p of o.ports) {
      const answer = await apiCall(apiSocket, {
        execute: 'add_hostfwd',
        arguments: { proto: p.protocol, host_addr: p.hostIp || '0.0.0.0', host_port: p.hostPort, guest_addr: o.address, guest_port: p.containerPort },
      });
      if (answer.error)
        throw new NetworkSetupError(
          `publishing ${p.hostIp || '0.0.0.0'}:${p.hostPort}/${p.protocol} failed: ${answer.error.desc ?? JSON.stringify(answer.error)}`,
        );
    }
  } catch (err) {
    await h.stop();
    throw err;
  } finally {
    await rm(sockDir, { recursive: true, force: true });
  }
  return h;
}
