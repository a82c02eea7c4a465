/**
 * The local node's Pod network must never overlap a network this machine routes to: Pods get
 * addresses on a bridge of our own, with no default route and no masquerade, so nothing they send
 * can leave the machine. The subnet is chosen from 198.18.0.0/15 (RFC 2544, benchmarking: never
 * routed on the internet) and checked against every route and address the host has at start-up.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const exec = promisify(execFile);

export interface Ipv4Net {
  /** The network address as a 32-bit unsigned number. */
  base: number;
  prefix: number;
}

export function parseIpv4(addr: string): number {
  const parts = addr.split('.');
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) {
    throw new Error(`not an IPv4 address: "${addr}"`);
  }
  return parts.reduce((n, p) => n * 256 + Number(p), 0);
}

export function formatIpv4(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
}

/** `A.B.C.D/N` (or a bare address, /32); the host bits are cleared. */
export function parseCidr(cidr: string): Ipv4Net {
  const [addr, len] = cidr.split('/');
  const prefix = len === undefined ? 32 : Number(len);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > 32) throw new Error(`bad prefix length in "${cidr}"`);
  const size = 2 ** (32 - prefix);
  return { base: Math.floor(parseIpv4(addr!) / size) * size, prefix };
}

export function overlaps(a: Ipv4Net, b: Ipv4Net): boolean {
  const aEnd = a.base + 2 ** (32 - a.prefix);
  const bEnd = b.base + 2 ** (32 - b.prefix);
  return a.base < bEnd && b.base < aEnd;
}

export interface HostNetworks {
  /** Destinations of the host's IPv4 routes, except the default route (which covers everything). */
  routes: { dst: string; dev: string }[];
  /** The host's own IPv4 addresses with their prefix. */
  addresses: { cidr: string; dev: string }[];
}

/** Reads `ip -j -4 route show table all` and `ip -j -4 addr`. */
export async function readHostNetworks(): Promise<HostNetworks> {
  const [r, a] = await Promise.all([exec('ip', ['-j', '-4', 'route', 'show', 'table', 'all']), exec('ip', ['-j', '-4', 'addr'])]);
  const routes = (JSON.parse(r.stdout) as { dst: string; dev?: string; type?: string }[])
    .filter((x) => x.dst !== 'default' && x.dst !== '0.0.0.0/0' && /^\d/.test(x.dst))
    .map((x) => ({ dst: x.dst, dev: x.dev ?? '' }));
  const addresses = (JSON.parse(a.stdout) as { ifname: string; addr_info?: { local: string; prefixlen: number }[] }[]).flatMap((i) =>
    (i.addr_info ?? []).map((ai) => ({ cidr: `${ai.local}/${ai.prefixlen}`, dev: i.ifname })),
  );
  return { routes, addresses };
}

/** What of the host's networks `subnet` overlaps (empty: safe to use). Loopback (127/8) counts too. */
export function conflicts(subnet: string, host: HostNetworks, ignoreDev?: string): string[] {
  const net = parseCidr(subnet);
  const out: string[] = [];
  for (const r of host.routes) {
    if (r.dev === ignoreDev) continue;
    if (overlaps(net, parseCidr(r.dst))) out.push(`route ${r.dst} dev ${r.dev}`);
  }
  for (const a of host.addresses) {
    if (a.dev === ignoreDev) continue;
    if (overlaps(net, parseCidr(a.cidr))) out.push(`address ${a.cidr} on ${a.dev}`);
  }
  return out;
}

export class PodNetworkOverlapError extends Error {
  readonly code = 'PodNetworkOverlap';
  constructor(subnet: string, found: string[]) {
    super(`Pod subnet ${subnet} overlaps this machine's networks (${found.join('; ')}): refusing to start the node; choose another podSubnet`);
    this.name = 'PodNetworkOverlapError';
  }
}

/** Candidate /24s for the Pod network, in order: 198.18.0.0/24 ... 198.18.15.0/24. */
export function candidateSubnets(): string[] {
  return Array.from({ length: 16 }, (_, i) => `198.18.${i}.0/24`);
}

/**
 * The subnet to use: `wanted` if given (refused when it overlaps), else the first candidate that
 * overlaps nothing (a node already running here has its bridge route, so a second one moves on).
 */
export function chooseSubnet(host: HostNetworks, wanted?: string, skip: ReadonlySet<number> = new Set()): { subnet: string; index: number } {
  if (wanted) {
    const found = conflicts(wanted, host);
    if (found.length) throw new PodNetworkOverlapError(wanted, found);
    return { subnet: wanted, index: Math.floor(parseCidr(wanted).base / 256) % 256 };
  }
  const candidates = candidateSubnets();
  for (const [index, subnet] of candidates.entries()) {
    if (!skip.has(index) && conflicts(subnet, host).length === 0) return { subnet, index };
  }
  throw new PodNetworkOverlapError(candidates.join(', '), ['every candidate is in use']);
}

/** The gateway (the bridge's own address) of a /24 or larger subnet: its first host address. */
export function gatewayOf(subnet: string): string {
  return formatIpv4(parseCidr(subnet).base + 1);
}
