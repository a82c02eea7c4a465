/** The local node's Pod subnet never overlaps a network of this machine (pure logic, plus this host's real routes). */
import { describe, expect, it } from 'vitest';
import {
  chooseSubnet,
  conflicts,
  gatewayOf,
  overlaps,
  parseCidr,
  PodNetworkOverlapError,
  readHostNetworks,
  type HostNetworks,
} from '../../hack/lib/harness/node-net.js';

const HOST: HostNetworks = {
  routes: [
    { dst: '192.0.2.0/24', dev: 'eth0' },
    { dst: '10.0.0.0/8', dev: 'wg0' },
  ],
  addresses: [
    { cidr: '127.0.0.1/8', dev: 'lo' },
    { cidr: '192.0.2.2/24', dev: 'eth0' },
  ],
};

describe('Pod subnet choice', () => {
  it('detects overlap in either direction and at the edges', () => {
    expect(overlaps(parseCidr('198.18.0.0/24'), parseCidr('198.18.0.128/25'))).toBe(true);
    expect(overlaps(parseCidr('198.18.0.0/24'), parseCidr('198.16.0.0/12'))).toBe(true);
    expect(overlaps(parseCidr('198.18.0.0/24'), parseCidr('198.18.1.0/24'))).toBe(false);
    expect(overlaps(parseCidr('10.255.255.255'), parseCidr('10.0.0.0/8'))).toBe(true);
    expect(overlaps(parseCidr('11.0.0.0/8'), parseCidr('10.0.0.0/8'))).toBe(false);
  });

  it('refuses a subnet that overlaps a route or an address of the host, naming it', () => {
    expect(() => chooseSubnet(HOST, '192.0.2.0/25')).toThrow(PodNetworkOverlapError);
    expect(() => chooseSubnet(HOST, '192.0.2.0/25')).toThrow(/route 192\.0\.2\.0\/24 dev eth0/);
    expect(() => chooseSubnet(HOST, '10.1.0.0/16')).toThrow(/wg0/);
    expect(() => chooseSubnet(HOST, '127.0.0.0/24')).toThrow(/address 127\.0\.0\.1\/8 on lo/);
    expect(chooseSubnet(HOST, '198.18.7.0/24')).toEqual({ subnet: '198.18.7.0/24', index: 7 });
  });

  it('picks the first free candidate, moving past a node already running (its bridge route)', () => {
    expect(chooseSubnet(HOST).subnet).toBe('198.18.0.0/24');
    const busy = { ...HOST, routes: [...HOST.routes, { dst: '198.18.0.0/24', dev: 'stvd0' }] };
    expect(chooseSubnet(busy)).toEqual({ subnet: '198.18.1.0/24', index: 1 });
    const full = { ...HOST, routes: [...HOST.routes, { dst: '198.18.0.0/15', dev: 'x' }] };
    expect(() => chooseSubnet(full)).toThrow(PodNetworkOverlapError);
    expect(gatewayOf('198.18.1.0/24')).toBe('198.18.1.1');
  });

  it("reads this machine's routes: the default route is left out, its own network is not", async () => {
    const host = await readHostNetworks();
    expect(host.routes.some((r) => r.dst === 'default')).toBe(false);
    expect(host.addresses.some((a) => a.cidr.startsWith('127.0.0.1/'))).toBe(true);
    for (const a of host.addresses) expect(conflicts(a.cidr, host).length).toBeGreaterThan(0);
  });
});
