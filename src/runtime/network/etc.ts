import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { InvalidInputError } from '../../util/errors.js';

/** `--add-host NAME:IP` (podman's form; an IPv6 address may follow the first colon unbracketed). */
export interface HostEntry {
  name: string;
  ip: string;
}

export function parseAddHost(value: string): HostEntry {
  const colon = value.indexOf(':');
  const name = colon < 0 ? '' : value.slice(0, colon);
  const ip = colon < 0 ? '' : value.slice(colon + 1).replace(/^\[(.*)\]$/, '$1');
  if (!/^[A-Za-z0-9][A-Za-z0-9.-]*$/.test(name) || isIP(ip) === 0) throw new InvalidInputError(`--add-host ${value}: expected HOST:IP`);
  return { name, ip };
}

export function parseDns(value: string): string {
  if (isIP(value) === 0) throw new InvalidInputError(`--dns ${value}: not an IP address`);
  return value;
}

export interface EtcOptions {
  hostname: string;
  /** `--add-host` entries, written before the defaults as podman does. */
  addHosts?: readonly HostEntry[];
  /** `--dns` servers: replace the host's nameservers (search and options lines are kept). */
  dns?: readonly string[];
  /** The container's own address and the host gateway, on a private network. */
  address?: string;
  gateway?: string;
  /** The container name, added beside the hostname for the container's own address. */
  name?: string;
}

/** /etc/hosts for a container: --add-host entries, localhost, the host gateway and the container itself. */
export function hostsFile(o: EtcOptions): string {
  const lines = (o.addHosts ?? []).map((h) => `${h.ip}\t${h.name}`);
  lines.push('127.0.0.1\tlocalhost', '::1\tlocalhost ip6-localhost ip6-loopback');
  if (o.gateway) lines.push(`${o.gateway}\thost.containers.internal host.docker.internal`);
  const names = o.name && o.name !== o.hostname ? `${o.hostname} ${o.name}` : o.hostname;
  lines.push(`${o.address ?? '127.0.1.1'}\t${names}`);
  return `${lines.join('\n')}\n`;
}

/** The host's resolv.conf with its nameservers replaced by `dns` (when given). */
export function resolvConf(host: string, dns: readonly string[] | undefined): string {
  if (!dns || dns.length === 0) return host;
  const kept = host.split('\n').filter((l) => l.trim() !== '' && !/^\s*nameserver\s/.test(l));
  return `${[...dns.map((d) => `nameserver ${d}`), ...kept].join('\n')}\n`;
}

/** Writes the bundle's hosts, hostname and resolv.conf (bind-mounted over the container's /etc). */
export async function writeEtcFiles(files: { hosts: string; hostname: string; resolvConf: string }, o: EtcOptions): Promise<void> {
  const writes: Promise<void>[] = [writeFile(files.hosts, hostsFile(o)), writeFile(files.hostname, `${o.hostname}\n`)];
  if (o.dns && o.dns.length > 0) {
    const host = await readFile('/etc/resolv.conf', 'utf8').catch(() => '');
    writes.push(writeFile(files.resolvConf, resolvConf(host, o.dns)));
  } else {
    writes.push(copyFile('/etc/resolv.conf', files.resolvConf).catch(() => writeFile(files.resolvConf, '')));
  }
  const results = await Promise.allSettled(writes);
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
}
