/** Pure logic of the node agent and the ContainerRun scheduler (no cluster needed). */
import { describe, expect, it } from 'vitest';
import { attemptContainerId, attemptContainerName, agentLeaseName, parseAttemptName } from '../../src/agent/naming.js';
import { logTail, restartDelayMs, signalOfExitCode } from '../../src/agent/status-text.js';
import { quantityBytes } from '../../src/agent/volumes.js';
import { leaseIsLive, matchesSelector, pickNode, type AgentNode } from '../../src/controllers/containerrun-nodes.js';
import { parseLabels } from '../../src/cli/commands/agent.js';

describe('attempt naming', () => {
  it('derives a stable 64-hex id per (uid, attempt), different for each attempt', () => {
    const a0 = attemptContainerId('uid-1', 0);
    expect(a0).toMatch(/^[0-9a-f]{64}$/);
    expect(attemptContainerId('uid-1', 0)).toBe(a0);
    expect(attemptContainerId('uid-1', 1)).not.toBe(a0);
    expect(attemptContainerId('uid-2', 0)).not.toBe(a0);
  });

  it('names containers namespace_name_attempt and parses them back, ignoring other containers', () => {
    expect(attemptContainerName('team-a', 'job.v1', 2)).toBe('team-a_job.v1_2');
    expect(parseAttemptName('team-a_job.v1_2')).toEqual({ namespace: 'team-a', name: 'job.v1', attempt: 2 });
    expect(parseAttemptName('stevedore-0123456789ab')).toBeUndefined();
    expect(parseAttemptName('my_container')).toBeUndefined();
    expect(agentLeaseName('node-1')).toBe('stevedore-agent-node-1');
  });
});

describe('status text', () => {
  it('names the signal behind 128+n exit codes only', () => {
    expect(signalOfExitCode(137)).toBe('SIGKILL');
    expect(signalOfExitCode(143)).toBe('SIGTERM');
    expect(signalOfExitCode(1)).toBeUndefined();
    expect(signalOfExitCode(128)).toBeUndefined();
    expect(signalOfExitCode(255)).toBeUndefined();
  });

  it('keeps the last 50 lines, and at most 64 KiB of them', () => {
    const lines = Array.from({ length: 120 }, (_, i) => `line ${i}`);
    const tail = logTail(lines).split('\n');
    expect(tail).toHaveLength(51); // 50 lines and the final newline
    expect(tail[0]).toBe('line 70');
    const long = logTail(Array.from({ length: 50 }, () => 'x'.repeat(4000)));
    expect(long.length).toBe(65536);
    expect(long.endsWith('x\n')).toBe(true);
    expect(logTail([])).toBe('');
  });

  it('backs off restarts 10 s, 20 s, 40 s ... up to 5 min', () => {
    expect([0, 1, 2].map((n) => restartDelayMs(n))).toEqual([10_000, 20_000, 40_000]);
    expect(restartDelayMs(20)).toBe(300_000);
    expect(restartDelayMs(3, 100, 500)).toBe(500);
  });
});

describe('quantities', () => {
  it('reads Kubernetes quantities as bytes and refuses nonsense with the value named', () => {
    expect(quantityBytes('64Mi')).toBe(64 * 1024 * 1024);
    expect(quantityBytes('1G')).toBe(1e9);
    expect(quantityBytes('1.5Ki')).toBe(1536);
    expect(quantityBytes(4096)).toBe(4096);
    expect(() => quantityBytes('lots')).toThrow(/invalid quantity "lots"/);
  });
});

describe('scheduling', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  const lease = (renewAgoS: number, duration = 40) => ({
    metadata: { name: 'x' },
    spec: { leaseDurationSeconds: duration, renewTime: new Date(now - renewAgoS * 1000).toISOString() },
  });

  it('counts a Lease live until renewTime + leaseDurationSeconds', () => {
    expect(leaseIsLive(lease(10), now)).toBe(true);
    expect(leaseIsLive(lease(41), now)).toBe(false);
    expect(leaseIsLive(lease(5, 3), now)).toBe(false);
    expect(leaseIsLive({ metadata: { name: 'x' }, spec: {} }, now)).toBe(false);
  });

  it('matches every nodeSelector label, none means any node', () => {
    expect(matchesSelector({ disk: 'ssd', zone: 'a' }, { disk: 'ssd' })).toBe(true);
    expect(matchesSelector({ disk: 'ssd' }, { disk: 'ssd', zone: 'a' })).toBe(false);
    expect(matchesSelector({}, undefined)).toBe(true);
  });

  it('picks the live, matching node with the fewest active runs', () => {
    const nodes: AgentNode[] = [
      { node: 'a', labels: { disk: 'ssd' }, live: true },
      { node: 'b', labels: { disk: 'ssd' }, live: true },
      { node: 'c', labels: { disk: 'ssd' }, live: false },
      { node: 'd', labels: { disk: 'hdd' }, live: true },
    ];
    expect(
      pickNode(
        nodes,
        { disk: 'ssd' },
        new Map([
          ['a', 3],
          ['b', 1],
        ]),
      )?.node,
    ).toBe('b');
    expect(pickNode(nodes, { disk: 'ssd' }, new Map())?.node).toBe('a');
    expect(pickNode(nodes, { disk: 'nvme' }, new Map())).toBeUndefined();
    expect(
      pickNode(
        nodes.filter((n) => n.node === 'c'),
        undefined,
        new Map(),
      ),
    ).toBeUndefined();
  });
});

describe('agent flags', () => {
  it('parses --node-labels k=v,k2=v2 and names a malformed entry', () => {
    expect(parseLabels('disk=ssd, topology.kubernetes.io/zone=a')).toEqual({ disk: 'ssd', 'topology.kubernetes.io/zone': 'a' });
    expect(parseLabels(undefined)).toEqual({});
    expect(() => parseLabels('disk')).toThrow(/"disk" is not KEY=VALUE/);
  });
});
