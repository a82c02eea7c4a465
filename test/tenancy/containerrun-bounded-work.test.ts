/**
 * One object must not make the agent hammer the cluster. A run stuck on a missing Secret, and a
 * chatty run, are watched on the real API server for a fixed time: every write to the run (each
 * new resourceVersion) and every Event is counted against a stated bound. The work queue's and the
 * event recorder's own guarantees are tested directly too.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import type { ContainerRun } from '../../src/k8s/api/containerrun.js';
import { KubeClient } from '../../src/k8s/runtime/client.js';
import { EventRecorder } from '../../src/k8s/runtime/events.js';
import { WorkQueue } from '../../src/k8s/runtime/queue.js';
import { ContainerRunRig, runsPath } from './containerrun-rig.js';

const NS = 'team-busy';
const rig = new ContainerRunRig({ tenants: [NS] });

beforeAll(async () => {
  await rig.start();
  await rig.pullSecret(NS);
}, 180_000);
afterAll(() => rig.stop(), 60_000);

interface EventObject {
  metadata: { name: string };
  reason: string;
  regarding: { name: string };
  series?: { count: number };
}

/** Watches one run for `ms` and returns each write (ADDED and MODIFIED) as `time rv phase/reason finalizers tail message`. */
async function runWrites(name: string, ms: number, start: () => Promise<unknown>): Promise<string[]> {
  const client = new KubeClient(rig.cp.kubeConfig);
  const stop = new AbortController();
  const writes: string[] = [];
  const list = `${runsPath(NS)}?fieldSelector=metadata.name%3D${name}`;
  // From a listed resourceVersion, so no write is missed while a watch is (re)opened.
  let rv = (await client.get<{ metadata: { resourceVersion: string } }>(list)).metadata.resourceVersion;
  const watching = (async () => {
    while (!stop.signal.aborted) {
      try {
        for await (const ev of client.watch<ContainerRun>(`${list}&watch=1&resourceVersion=${rv}`, stop.signal)) {
          const r = ev.object;
          if (ev.type !== 'ADDED' && ev.type !== 'MODIFIED') continue;
          rv = r.metadata.resourceVersion!;
          writes.push(
            `${Date.now()} ${rv} ${r.status?.phase}/${r.status?.reason} ${(r.metadata.finalizers ?? []).length} tail=${r.status?.logTail?.length ?? 0} ${r.status?.message ?? ''}`,
          );
        }
      } catch {
        // "storage is (re)initializing" right after the CRD appeared, or the watch ended: open it again.
      }
      if (!stop.signal.aborted) await new Promise((r) => setTimeout(r, 200));
    }
  })();
  await new Promise((r) => setTimeout(r, 300)); // the watch is open before the run exists
  await start();
  await new Promise((r) => setTimeout(r, ms));
  stop.abort();
  await watching;
  client.close();
  return writes;
}

async function eventsAbout(name: string): Promise<EventObject[]> {
  const res = await rig.cp.request('GET', `/apis/events.k8s.io/v1/namespaces/${NS}/events`);
  return ((res.json as { items: EventObject[] }).items ?? []).filter((e) => e.regarding.name === name);
}

describe('the work queue', () => {
  it('keeps a scheduled retry when the key is added again meanwhile (as client-go’s delaying queue)', async () => {
    const q = new WorkQueue({ requeueJitter: 0 });
    q.addAfter('k', 150);
    q.add('k'); // e.g. a watch event for the run's own status write
    expect(await q.get()).toBe('k');
    q.done('k');
    const t0 = Date.now();
    const again = await Promise.race([q.get(), new Promise((r) => setTimeout(() => r('cancelled'), 1000))]);
    expect(again).toBe('k');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(100);
    q.shutDown();
  });
});

describe('the event recorder on the real API server', () => {
  it('aggregates one repeated event into one Event with a count, and stops at 25 per object (token bucket, 1 per 5 min)', async () => {
    const recorder = new EventRecorder(new KubeClient(rig.cp.kubeConfig), { controller: 'test', instance: 'x', log: pino({ level: 'silent' }) });
    const target = { apiVersion: 'stevedore.dev/v1alpha1', kind: 'ContainerRun', metadata: { name: 'noisy', namespace: NS, uid: 'uid-noisy' } };
    for (let i = 0; i < 40; i++) await recorder.record(target, 'Warning', 'CreateContainerConfigError', 'Secret team-busy/missing not found');
    for (let i = 0; i < 5; i++) await recorder.record(target, 'Warning', 'Other', `different ${i}`);
    const events = await eventsAbout('noisy');
    expect(events).toHaveLength(1);
    expect(events[0]!.series?.count).toBe(25);
  });
});

describe('a run against the real agent', () => {
  it('stuck on a missing Secret for 30 s: at most 4 writes to the run and one Event with count <= 4', async () => {
    const writes = await runWrites('stuck', 30_000, () =>
      rig.createRun(NS, 'stuck', {
        command: ['true'],
        imagePullSecrets: [{ name: 'pull' }],
        env: [{ name: 'TOKEN', valueFrom: { secretKeyRef: { name: 'missing', key: 'token' } } }],
      }),
    );
    const run = await rig.getRun(NS, 'stuck');
    expect(run?.status).toMatchObject({ phase: 'Pending', reason: 'CreateContainerConfigError' });
    // Create, the controller's finalizer, the agent's one Pending write (nothing changes after it).
    expect(writes.length, writes.join('\n')).toBeLessThanOrEqual(4);
    const events = await eventsAbout('stuck');
    expect(events).toHaveLength(1);
    // Looks at 0 s, 10 s, 30 s (10 s, 20 s, 40 s apart ...).
    expect(events[0]!.series?.count ?? 1).toBeLessThanOrEqual(4);
    await rig.cp.request('DELETE', runsPath(NS, 'stuck'));
  }, 60_000);

  it('a chatty run for 12 s: its logTail is written at most every 5 s (at most 8 writes in all)', async () => {
    const writes = await runWrites('chatty', 12_000, () =>
      rig.createRun(NS, 'chatty', {
        command: ['sh', '-c', 'i=0; while true; do i=$((i+1)); echo line $i; busybox sleep 0.05; done'],
        imagePullSecrets: [{ name: 'pull' }],
      }),
    );
    const run = await rig.getRun(NS, 'chatty');
    expect(run?.status?.phase).toBe('Running');
    expect(run?.status?.logTail).toMatch(/line \d+/);
    // Create, finalizer, Pulling, Running, then a tail every 5 s of the ~11 s it runs (2-3).
    expect(writes.length, writes.join('\n')).toBeLessThanOrEqual(8);
    await rig.cp.request('DELETE', runsPath(NS, 'chatty'));
  }, 60_000);

  it('backs off between pulls: a refused pull is tried 3 times, >= 300 ms then >= 600 ms apart (restart back-off 300ms), not in a burst', async () => {
    const writes = await runWrites('refused', 10_000, () => rig.createRun(NS, 'refused', { command: ['true'] }));
    const at = (pattern: RegExp) => Number(writes.find((w) => pattern.test(w))?.split(' ')[0]);
    const first = at(/ErrImagePull .*\(1 of 3 tries\)/);
    const second = at(/ErrImagePull .*\(2 of 3 tries\)/);
    const last = at(/Failed\/ErrImagePull/);
    expect([first, second, last].every(Number.isFinite), writes.join('\n')).toBe(true);
    // ±10 % jitter on the 300 ms and 600 ms delays.
    expect(second - first, writes.join('\n')).toBeGreaterThanOrEqual(270);
    expect(last - second, writes.join('\n')).toBeGreaterThanOrEqual(540);
  }, 30_000);
});
