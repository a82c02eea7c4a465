/** The pure parts of the private network: flag parsing, the etc files, pasta's and slirp4netns's command lines. */
import { describe, expect, it } from 'vitest';
import { hostsFile, parseAddHost, parseDns, parsePublish, resolvConf } from '../../src/runtime/network/index.js';
import { pastaArgs } from '../../src/runtime/network/pasta.js';
import { checkPortConflicts } from '../../src/runtime/network/ports.js';
import { slirpArgs } from '../../src/runtime/network/slirp.js';

describe('parsePublish', () => {
  it("reads podman's forms", () => {
    expect(parsePublish('8080:80')).toEqual({ hostIp: '', hostPort: 8080, containerPort: 80, protocol: 'tcp' });
    expect(parsePublish('127.0.0.1:18080:80')).toEqual({ hostIp: '127.0.0.1', hostPort: 18080, containerPort: 80, protocol: 'tcp' });
    expect(parsePublish('5353:53/udp')).toEqual({ hostIp: '', hostPort: 5353, containerPort: 53, protocol: 'udp' });
    expect(parsePublish('[::1]:8443:443/tcp')).toEqual({ hostIp: '::1', hostPort: 8443, containerPort: 443, protocol: 'tcp' });
  });

  it.each(['80', '8000-8010:8000-8010', '1:2:3:4', 'host:80:80', '0:80', '80:65536', '8080:80/sctp', 'a:b', ''])(
    'refuses %j with a message naming the flag',
    (v) => {
      expect(() => parsePublish(v)).toThrow(/--publish/);
    },
  );

  it('refuses a host port published twice on one address or the wildcard', () => {
    expect(() => checkPortConflicts([parsePublish('127.0.0.1:80:80'), parsePublish('127.0.0.1:80:81')])).toThrow(/published twice/);
    expect(() => checkPortConflicts([parsePublish('80:80'), parsePublish('127.0.0.1:80:81')])).toThrow(/published twice/);
    expect(() => checkPortConflicts([parsePublish('127.0.0.1:80:80'), parsePublish('127.0.0.2:80:80'), parsePublish('80:80/udp')])).not.toThrow();
  });
});

describe('etc files', () => {
  it('--add-host and --dns are validated', () => {
    expect(parseAddHost('db:10.0.2.2')).toEqual({ name: 'db', ip: '10.0.2.2' });
    expect(parseAddHost('v6:[fd00::5]')).toEqual({ name: 'v6', ip: 'fd00::5' });
    expect(() => parseAddHost('db')).toThrow(/HOST:IP/);
    expect(() => parseAddHost('db:not-ip')).toThrow(/HOST:IP/);
    expect(() => parseDns('resolver')).toThrow(/not an IP/);
  });

  it('hosts: added entries first, then localhost, the gateway and the container itself', () => {
    expect(hostsFile({ hostname: 'web1', name: 'web', addHosts: [{ name: 'db', ip: '10.0.2.2' }], address: '10.0.2.100', gateway: '10.0.2.2' })).toBe(
      '10.0.2.2\tdb\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n10.0.2.2\thost.containers.internal host.docker.internal\n10.0.2.100\tweb1 web\n',
    );
    expect(hostsFile({ hostname: 'abc' })).toBe('127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\tabc\n');
  });

  it('resolv.conf: --dns replaces the nameservers and keeps search and options', () => {
    expect(resolvConf('search example.org\nnameserver 10.255.255.53\noptions ndots:2\n', ['192.0.2.53', '192.0.2.54'])).toBe(
      'nameserver 192.0.2.53\nnameserver 192.0.2.54\nsearch example.org\noptions ndots:2\n',
    );
    expect(resolvConf('nameserver 10.255.255.53\n', undefined)).toBe('nameserver 10.255.255.53\n');
  });
});

describe('helper command lines', () => {
  const o = {
    nsPath: '/b/netns',
    dir: '/b',
    ifname: 'eth0',
    address: '10.0.2.100',
    gateway: '10.0.2.2',
    ports: [parsePublish('127.0.0.1:8080:80'), parsePublish('5353:53/udp')],
  };

  it('pasta: our addresses, no forwarding from the namespace to the host, only the published ports', () => {
    const a = pastaArgs(o, '/b/pasta.pid');
    expect(a.join(' ')).toContain('--address 10.0.2.100 --netmask 24 --gateway 10.0.2.2');
    expect(a.join(' ')).toContain('-t 127.0.0.1/8080:80 -u 5353:53 -T none -U none --netns /b/netns');
    expect(a).not.toContain('--config-net');
    expect(pastaArgs({ ...o, ports: [] }, '/p').join(' ')).toContain('-t none -u none -T none -U none');
  });

  it('slirp4netns: its DNS forwarder off, the namespace by path', () => {
    expect(slirpArgs(o, '/s/api.sock')).toEqual([
      '--netns-type=path',
      '--mtu=65520',
      '--disable-dns',
      '--enable-seccomp',
      '--api-socket=/s/api.sock',
      '--ready-fd=3',
      '/b/netns',
      'eth0',
    ]);
  });
});
