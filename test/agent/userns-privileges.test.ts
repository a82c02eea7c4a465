/** The pure parts of per-run user namespaces and privilege levels: the id pool, blocks, the rules. */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { privilegeLevel, privilegeViolations } from '../../src/agent/privileges.js';
import { IdsExhaustedError, UserNamespaceAllocator } from '../../src/agent/userns.js';
import { delegatedIdRanges, parseIdRange } from '../../src/runtime/idmap.js';
import { pickNode, type AgentNode } from '../../src/controllers/containerrun-nodes.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});
async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'stevedore-userns-'));
  dirs.push(d);
  return d;
}

describe('the pool of ids a node gives runs', () => {
  it('in the initial user namespace there is nothing delegated (a range must be configured)', () => {
    expect(delegatedIdRanges('         0          0 4294967295\n', '         0          0 4294967295\n')).toBeUndefined();
  });

  it('a rootless agent delegates its subordinate ids, never its own id 0, and only ids mapped for both uids and gids', () => {
    // unshare --map-root-user --map-auto: 0 → the caller, 1.. → its subordinate range.
    expect(delegatedIdRanges('0 1000 1\n1 100000 65536\n', '0 1000 1\n1 100000 65536\n')).toEqual([{ start: 1, count: 65536 }]);
    expect(delegatedIdRanges('0 100000 131072\n', '0 100000 65537\n')).toEqual([{ start: 1, count: 65536 }]);
  });

  it('parses START:COUNT and refuses a range holding host uid 0', () => {
    expect(parseIdRange('65536:131072', '--userns-range')).toEqual({ start: 65536, count: 131072 });
    expect(() => parseIdRange('0:65536', '--userns-range')).toThrow(/0 is the host's root/);
    expect(() => parseIdRange('abc', '--userns-range')).toThrow(/START:COUNT/);
  });
});

describe('UserNamespaceAllocator', () => {
  it('gives concurrent runs disjoint blocks, the same block to the same run, persists them, refuses when full, reuses a released block', async () => {
    const root = await tmp();
    const pool = [{ start: 65536, count: 65536 * 2 }];
    const alloc = await UserNamespaceAllocator.open(root, pool);
    const [a, b] = await Promise.all([alloc.allocate('uid-a'), alloc.allocate('uid-b')]);
    expect(new Set([a.uidMappings[0]!.hostID, b.uidMappings[0]!.hostID])).toEqual(new Set([65536, 131072]));
    expect(a.uidMappings[0]).toMatchObject({ containerID: 0, size: 65536 });
    expect(await alloc.allocate('uid-a')).toEqual(a);
    await expect(alloc.allocate('uid-c')).rejects.toBeInstanceOf(IdsExhaustedError);

    // Another process (a restarted agent) sees the same table.
    const again = await UserNamespaceAllocator.open(root, pool);
    expect(again.lookup('uid-b')).toEqual(b);
    await again.release('uid-a');
    expect(JSON.parse(await readFile(join(root, 'agent', 'userns.json'), 'utf8')).blocks).toEqual({ 'uid-b': b.uidMappings[0]!.hostID });
    expect((await again.allocate('uid-c')).uidMappings[0]!.hostID).toBe(a.uidMappings[0]!.hostID);
  });
});

describe('privilege levels', () => {
  const spec = { image: 'x' };
  it('absent or unknown label values are restricted; only "privileged" grants', () => {
    expect(privilegeLevel(undefined)).toBe('restricted');
    expect(privilegeLevel({ 'stevedore.dev/containerrun-privileges': 'Privileged' })).toBe('restricted');
    expect(privilegeLevel({ 'stevedore.dev/containerrun-privileges': 'privileged' })).toBe('privileged');
  });

  it('restricted refuses hostUsers, host network and a tainted pinned node, naming the rule and the label', () => {
    expect(privilegeViolations({ ...spec, user: '0' }, 'restricted')).toEqual([]);
    const v = privilegeViolations({ ...spec, hostUsers: true, network: 'host', nodeName: 'cp-1' }, 'restricted', [
      { key: 'node-role.kubernetes.io/control-plane', effect: 'NoSchedule' },
    ]);
    expect(v).toHaveLength(3);
    expect(v[0]).toMatch(/^spec\.hostUsers.*stevedore\.dev\/containerrun-privileges=privileged/);
    expect(v[1]).toMatch(/^spec\.network: host/);
    expect(v[2]).toMatch(/node cp-1 is tainted \(node-role\.kubernetes\.io\/control-plane:NoSchedule\)/);
    // A condition taint (a node not ready yet) is the node's state, not a reservation.
    expect(privilegeViolations({ ...spec, nodeName: 'n' }, 'restricted', [{ key: 'node.kubernetes.io/not-ready', effect: 'NoSchedule' }])).toEqual([]);
    // PreferNoSchedule does not keep Pods off a node: not a privilege either.
    expect(privilegeViolations({ ...spec, nodeName: 'n' }, 'restricted', [{ key: 'k', effect: 'PreferNoSchedule' }])).toEqual([]);
    expect(privilegeViolations({ ...spec, hostUsers: true, network: 'host' }, 'privileged')).toEqual([]);
  });
});

describe('scheduling by nodeSelector', () => {
  it('never picks a node whose agent reports it tainted, even when it matches and is idle', () => {
    const nodes: AgentNode[] = [
      { node: 'cp-1', labels: { zone: 'a', 'stevedore.dev/tainted': 'true' }, live: true },
      { node: 'worker-1', labels: { zone: 'a' }, live: true },
    ];
    const load = new Map([['worker-1', 5]]);
    expect(pickNode(nodes, { zone: 'a' }, load)?.node).toBe('worker-1');
    expect(pickNode([nodes[0]!], undefined, new Map())).toBeUndefined();
  });
});
