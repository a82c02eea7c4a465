import { isIP } from 'node:net';
import { InvalidInputError } from '../../util/errors.js';

/** One `-p/--publish` mapping: connections to hostIp:hostPort reach containerPort in the container. */
export interface PortMapping {
  /** The host address to bind; '' binds every address (podman's default). */
  hostIp: string;
  hostPort: number;
  containerPort: number;
  protocol: 'tcp' | 'udp';
}

function port(flag: string, value: string, what: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidInputError(`${flag}: ${what} "${value}" is not a port number`);
  const n = Number(value);
  if (n < 1 || n > 65535) throw new InvalidInputError(`${flag}: ${what} ${n} is outside 1-65535`);
  return n;
}

/**
 * Parses podman's `[ip:]hostPort:containerPort[/tcp|udp]` (an IPv6 host address in brackets).
 * Ranges and a random host port (`-p 80`) are refused with a message saying so.
 */
export function parsePublish(value: string): PortMapping {
  const flag = `--publish ${value}`;
  let rest = value;
  let protocol: PortMapping['protocol'] = 'tcp';
  const slash = rest.lastIndexOf('/');
  if (slash >= 0) {
    const p = rest.slice(slash + 1);
    if (p !== 'tcp' && p !== 'udp') throw new InvalidInputError(`${flag}: protocol must be tcp or udp, got "${p}"`);
    protocol = p;
    rest = rest.slice(0, slash);
  }
  let hostIp = '';
  const bracket = /^\[([^\]]+)\]:(.*)$/.exec(rest);
  if (bracket) {
    hostIp = bracket[1]!;
    rest = bracket[2]!;
  }
  const parts = rest.split(':');
  if (!bracket && parts.length === 3) hostIp = parts.shift()!;
  if (parts.length !== 2)
    throw new InvalidInputError(`${flag}: expected [IP:]HOST_PORT:CONTAINER_PORT[/tcp|udp] (a random host port is not supported: give one)`);
  if (hostIp !== '' && isIP(hostIp) === 0) throw new InvalidInputError(`${flag}: "${hostIp}" is not an IP address`);
  if (parts.some((p) => p.includes('-'))) throw new InvalidInputError(`${flag}: port ranges are not supported; publish each port`);
  return { hostIp, hostPort: port(flag, parts[0]!, 'host port'), containerPort: port(flag, parts[1]!, 'container port'), protocol };
}

/** Refuses two mappings of the same host port and protocol on one address (or the wildcard): the second could never bind. */
export function checkPortConflicts(ports: readonly PortMapping[]): void {
  ports.forEach((a, i) => {
    const b = ports
      .slice(0, i)
      .find((x) => x.protocol === a.protocol && x.hostPort === a.hostPort && (x.hostIp === a.hostIp || x.hostIp === '' || a.hostIp === ''));
    if (b) throw new InvalidInputError(`--publish: host port ${a.hostPort}/${a.protocol}${a.hostIp ? ` on ${a.hostIp}` : ''} is published twice`);
  });
}

/** pasta's `-t`/`-u` value for one mapping: `[addr/]hostPort:containerPort`. */
export function pastaPortSpec(p: PortMapping): string {
  return `${p.hostIp ? `${p.hostIp}/` : ''}${p.hostPort}:${p.containerPort}`;
}

/** A published port as an API gives it (a ContainerRun's `spec.ports`): protocol in capitals, host address defaulted. */
export interface DeclaredPort {
  containerPort: number;
  hostPort: number;
  /** Default 127.0.0.1: the node only (podman's default is every address). */
  hostIP?: string;
  protocol?: 'TCP' | 'UDP';
}

/** The mappings of declared ports, each checked as a `-p` value would be. */
export function portMappings(ports: readonly DeclaredPort[] | undefined): PortMapping[] {
  return (ports ?? []).map((p) => {
    const host = p.hostIP ?? '127.0.0.1';
    const proto = (p.protocol ?? 'TCP').toLowerCase();
    return parsePublish(`${host.includes(':') ? `[${host}]` : host}:${p.hostPort}:${p.containerPort}/${proto}`);
  });
}
