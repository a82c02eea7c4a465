import { describe, expect, it } from 'vitest';
import { parseDestination } from '../../src/build/output/destinations.js';
import { listLocation } from '../../src/manifest/list.js';
import { familiarName, hasRegistryHost, parseReference } from '../../src/oci/reference.js';

/** "Does this name start with a registry host": one rule (oci/reference), used by every caller. */
describe('hasRegistryHost', () => {
  it('takes a first component with a dot, a port, an uppercase letter, or localhost for a host', () => {
    for (const name of ['reg.io/x', 'localhost:5000/x', 'localhost/x', '127.0.0.1/x', 'MyReg/x', '[::1]:5000/x'])
      expect(hasRegistryHost(name), name).toBe(true);
    for (const name of ['busybox', 'user/app', 'library/busybox', 'reg.io', 'localhost', '/x']) expect(hasRegistryHost(name), name).toBe(false);
  });

  it('is the rule parseReference and familiarName follow', () => {
    expect(parseReference('MyReg/app:1').registry).toBe('MyReg');
    expect(parseReference('user/app').registry).toBe('docker.io');
    expect(familiarName(parseReference('docker.io/foo.bar/baz'))).toBe('docker.io/foo.bar/baz');
    expect(familiarName(parseReference('docker.io/user/app'))).toBe('user/app');
  });

  it('decides where a build output goes: a registry host is pushed, localhost/ and bare names stay local', () => {
    expect(parseDestination('reg.io/team/app:1').kind).toBe('push');
    expect(parseDestination('localhost:5000/app').kind).toBe('push');
    expect(parseDestination('MyReg/app').kind).toBe('push');
    expect(parseDestination('localhost/app').kind).toBe('local');
    expect(parseDestination('user/app').kind).toBe('local');
  });

  it('names a manifest list by its host when it has one (MyReg/list was filed as localhost/list)', () => {
    expect(listLocation('MyReg/list', '/store').display).toBe('MyReg/list:latest');
    expect(listLocation('reg.io/team/list:v1', '/store').display).toBe('reg.io/team/list:v1');
    expect(listLocation('mylist', '/store').display).toBe('localhost/mylist:latest');
    expect(listLocation('team/list', '/store').display).toBe('localhost/team/list:latest');
  });
});
