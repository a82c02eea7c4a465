// The reconcile skeleton's contract (k8s/runtime/reconcile.ts), against a real API server with the
// ImageMirror CRD: one status patch per reconcile and none when nothing changed, an Event only on a
// Ready transition, a non-retryable engine error stalls (its code as reason) and a retryable one does
// not, a step that returns a result ends the list, and on deletion the kind's cleanup runs while the
// finalizer still holds the object, which goes only after. Each reconcile's steps share a context
// (`scope.ctx`) the kind makes fresh for that reconcile.
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_VERSION } from '../../src/k8s/api/common.js';
import type { ImageMirror, ImageMirrorReason, ImageMirrorStatus } from '../../src/k8s/api/imagemirror.js';
import { KubeClient, isConflict, isNotFound } from '../../src/k8s/runtime/client.js';
import { StallingError } from '../../src/k8s/runtime/errors.js';
import { EventRecorder } from '../../src/k8s/runtime/events.js';
import { ReconcileLoop, errorsFor, stopWhenStalled, type ReconcileKind, type Step } from '../../src/k8s/runtime/reconcile.js';
import { IMAGE_MIRROR_FINALIZER, IMAGE_MIRROR_RESOURCE } from '../../src/controllers/imagemirror.js';
import { InvalidInputError, StevedoreError } from '../../src/util/errors.js';
import { startControlPlane, type ControlPlane } from '../../hack/lib/harness/controlplane.js';
import { mirrorsPath } from '../controllers/helpers.js';

const NS = 'skeleton';
let cp: ControlPlane;
let client: CountingClient;
let events: EventRecorder;
const log = pino({ level: 'silent' });

/** The real client, counting the patches it sends (by path). */
class CountingClient extends KubeClient {
  readonly patches: string[] = [];
  override patch<T>(path: string, body: unknown, type?: 'merge' | 'json'): Promise<T> {
    this.patches.push(path);
    return super.patch<T>(path, body, type);
  }
  statusPatches(): number {
    return this.patches.filter((p) => p.endsWith('/status')).length;
  }
}

type MirrorStep = Step<ImageMirror, ImageMirrorStatus, ImageMirrorReason>;

type LoopExtras = {
  finalize?: (m: ImageMirror) => Promise<{ requeueAfterMs?: number } | undefined>;
  guardStatus?: boolean;
  eventAction?: string;
  onStalled?: (status: ImageMirrorStatus, reason: string, message: string) => void;
  gone?: (req: { namespace: string; name: string }) => void;
  precheck?: (m: ImageMirror) => Promise<{ requeueAfterMs?: number } | undefined>;
  addFinalizer?: boolean;
  transitionEvents?: boolean;
  afterStalled?: (m: ImageMirror, status: ImageMirrorStatus, reason: string, message: string) => Promise<void>;
};

function loop(steps: MirrorStep[], more: LoopExtras = {}) {
  return new ReconcileLoop<ImageMirror, ImageMirrorStatus, ImageMirrorReason>(client, events, {
    kind: 'ImageMirror',
    resource: IMAGE_MIRROR_RESOURCE,
    finalizer: IMAGE_MIRROR_FINALIZER,
    statusKeys: ['observedGeneration', 'conditions', 'lastHandledReconcileAt', 'lastSyncTime', 'nextSyncTime', 'counts', 'tags'],
    steps,
    ...more,
  });
}

async function create(name: string): Promise<ImageMirror> {
  return client.create<ImageMirror>(mirrorsPath(NS), {
    apiVersion: API_VERSION,
    kind: 'ImageMirror',
    metadata: { name },
    spec: {
      source: { registry: { repository: 'registry.invalid/src/app' } },
      destination: { registry: { repository: 'registry.invalid/dst/app' } },
    },
  });
}

const get = (name: string) => client.get<ImageMirror>(mirrorsPath(NS, name));
const cond = (m: ImageMirror, type: string) => m.status?.conditions?.find((c) => c.type === type);
const req = (name: string) => ({ namespace: NS, name });

async function eventsAbout(name: string): Promise<{ reason: string; type: string; note: string; action: string }[]> {
  const list = await client.get<{ items: { reason: string; type: string; note: string; action: string; regarding: { name: string } }[] }>(
    `/apis/events.k8s.io/v1/namespaces/${NS}/events`,
  );
  return list.items.filter((e) => e.regarding.name === name);
}

beforeAll(async () => {
  cp = await startControlPlane();
  await cp.installCRDs();
  await cp.createNamespace(NS);
  client = new CountingClient(cp.kubeConfig);
  events = new EventRecorder(client, { controller: 'stevedore.dev/test', instance: 'test', log });
}, 120_000);

afterAll(async () => {
  client?.close();
  await cp?.stop();
});

describe('the reconcile skeleton', () => {
  it('sends one status patch for every step that changed status, none when nothing changed, and one Event per Ready transition', async () => {
    await create('once');
    const steps: MirrorStep[] = [
      async (s) => {
        s.status.observedGeneration = s.generation;
        return undefined;
      },
      async (s) => {
        s.status.lastSyncTime = '2026-01-01T00:00:00Z';
        return undefined;
      },
      async (s) => {
        s.ready(true, 'Succeeded', 'all synced');
        return undefined;
      },
    ];
    const l = loop(steps);
    const n0 = client.statusPatches();
    await l.run(req('once'), AbortSignal.timeout(30_000));
    expect(client.statusPatches() - n0).toBe(1);
    const m = await get('once');
    expect(m.metadata.finalizers).toContain(IMAGE_MIRROR_FINALIZER);
    expect(m.status).toMatchObject({ observedGeneration: 1, lastSyncTime: '2026-01-01T00:00:00Z' });
    expect(cond(m, 'Ready')).toMatchObject({ status: 'True', reason: 'Succeeded', message: 'all synced' });
    expect(await eventsAbout('once')).toEqual([expect.objectContaining({ type: 'Normal', reason: 'Succeeded', note: 'all synced' })]);

    // Again, from the informer's copy as the controller hands it over: the same status, no patch, no Event.
    const n1 = client.patches.length;
    await l.run({ ...req('once'), cached: m }, AbortSignal.timeout(30_000));
    expect(client.patches.length - n1).toBe(0);
    expect((await get('once')).metadata.resourceVersion).toBe(m.metadata.resourceVersion);
    expect(await eventsAbout('once')).toHaveLength(1);
  });

  it('a step that returns a result ends the list; progress() patches early and the end patches only what changed since', async () => {
    await create('stop');
    const ran: string[] = [];
    const l = loop([
      async (s) => {
        ran.push('a');
        s.reconciling('Progressing', 'working');
        await s.progress();
        await s.progress(); // nothing new: no second patch
        return undefined;
      },
      async (s) => {
        ran.push('b');
        s.ready(false, 'Suspended', 'held');
        return { requeueAfterMs: 1234 };
      },
      async () => {
        ran.push('c');
        return undefined;
      },
    ]);
    const n0 = client.statusPatches();
    expect(await l.run(req('stop'), AbortSignal.timeout(30_000))).toEqual({ requeueAfterMs: 1234 });
    expect(ran).toEqual(['a', 'b']);
    expect(client.statusPatches() - n0).toBe(2);
    const m = await get('stop');
    expect(cond(m, 'Ready')).toMatchObject({ status: 'False', reason: 'Suspended' });
    expect(cond(m, 'Reconciling')).toBeUndefined();
  });

  it('a non-retryable engine error stalls with its code as reason, in one patch, and the queue gets a StallingError; a later run while stalled stops at stopWhenStalled', async () => {
    await create('stall');
    let calls = 0;
    const l = loop([
      stopWhenStalled(),
      async () => {
        calls++;
        throw new InvalidInputError('spec.tags.semver: ">=1 <<<" is no range');
      },
    ]);
    const n0 = client.statusPatches();
    const err = await l.run(req('stall'), AbortSignal.timeout(30_000)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StallingError);
    expect((err as StallingError).reason).toBe('INVALID_INPUT');
    expect(client.statusPatches() - n0).toBe(1);
    const m = await get('stall');
    expect(cond(m, 'Stalled')).toMatchObject({ status: 'True', reason: 'INVALID_INPUT', observedGeneration: 1 });
    expect(cond(m, 'Ready')).toMatchObject({ status: 'False', reason: 'INVALID_INPUT' });
    expect(m.status?.observedGeneration).toBe(1);
    expect(await eventsAbout('stall')).toEqual([expect.objectContaining({ type: 'Warning', reason: 'INVALID_INPUT' })]);

    const n1 = client.patches.length;
    expect(await l.run({ ...req('stall'), cached: m }, AbortSignal.timeout(30_000))).toEqual({});
    expect(calls).toBe(1);
    expect(client.patches.length - n1).toBe(0);
  });

  it('a kind’s own terminal fields go in the stalled patch (onStalled), its Events carry its action, and a gone object is forgotten (gone)', async () => {
    await create('hooks');
    const seen: string[] = [];
    const l = loop(
      [
        async (s) => {
          await s.event('Normal', 'Progressing', 'looked');
          throw new InvalidInputError('invalid reference "Up/Per": malformed repository component');
        },
      ],
      {
        eventAction: 'Schedule',
        onStalled: (status, reason, message) => {
          seen.push(reason);
          status.lastSyncTime = '2026-02-02T00:00:00Z';
          expect(message).toContain('Up/Per');
        },
        gone: (r) => seen.push(`gone ${r.namespace}/${r.name}`),
      },
    );
    const n0 = client.statusPatches();
    await expect(l.run(req('hooks'), AbortSignal.timeout(30_000))).rejects.toBeInstanceOf(StallingError);
    expect(client.statusPatches() - n0).toBe(1);
    const m = await get('hooks');
    expect(m.status?.lastSyncTime).toBe('2026-02-02T00:00:00Z');
    expect(cond(m, 'Stalled')).toMatchObject({ status: 'True', reason: 'INVALID_INPUT' });
    const evs = (await eventsAbout('hooks')).map((e) => [e.type, e.reason, e.action]).sort();
    expect(evs).toEqual([
      ['Normal', 'Progressing', 'Schedule'],
      ['Warning', 'INVALID_INPUT', 'Schedule'],
    ]);
    expect(seen).toEqual(['INVALID_INPUT']);
    // A retryable error is not a stall: onStalled is not called.
    const again = loop(
      [
        async () => {
          throw new StevedoreError('REGISTRY_UNAVAILABLE', '503', { retryable: true });
        },
      ],
      { onStalled: () => seen.push('wrong') },
    );
    await create('hooks-retry');
    await expect(again.run(req('hooks-retry'), AbortSignal.timeout(30_000))).rejects.toBeInstanceOf(StevedoreError);
    expect(seen).toEqual(['INVALID_INPUT']);
    await l.run(req('no-such-mirror'), AbortSignal.timeout(30_000));
    expect(seen).toEqual(['INVALID_INPUT', `gone ${NS}/no-such-mirror`]);
  });

  it('a second owner of the kind (the node agent): precheck ends early with no write, no finalizer added, no transition Events, afterStalled sees the stalled status', async () => {
    await create('second');
    const seen: string[] = [];
    const steps: MirrorStep[] = [
      async (s) => {
        s.status.observedGeneration = s.generation;
        s.ready(true, 'Succeeded', 'done by the second owner');
        return undefined;
      },
    ];
    const extras: LoopExtras = { addFinalizer: false, transitionEvents: false };
    // precheck: not this owner's object: no finalizer, no status, no step.
    const skip = loop(steps, { ...extras, precheck: async (m) => (seen.push(`precheck ${m.metadata.name}`), { requeueAfterMs: 7 }) });
    const n0 = client.patches.length;
    expect(await skip.run(req('second'), AbortSignal.timeout(30_000))).toEqual({ requeueAfterMs: 7 });
    expect(client.patches.length - n0).toBe(0);
    expect(seen).toEqual(['precheck second']);

    const l = loop(steps, { ...extras, precheck: async () => undefined });
    await l.run(req('second'), AbortSignal.timeout(30_000));
    const m = await get('second');
    expect(m.metadata.finalizers ?? []).not.toContain(IMAGE_MIRROR_FINALIZER);
    expect(cond(m, 'Ready')).toMatchObject({ status: 'True', reason: 'Succeeded' });
    expect(await eventsAbout('second')).toEqual([]);

    // An error that stalls the object calls afterStalled with the status to be patched; a step may stall it itself (scope.stalled).
    await create('second-stall');
    const stalls = loop(
      [
        async () => {
          throw new InvalidInputError('never');
        },
      ],
      {
        ...extras,
        afterStalled: async (obj, status, reason) => {
          seen.push(`after ${obj.metadata.name} ${reason} ${status.conditions?.find((c) => c.type === 'Stalled')?.reason}`);
        },
      },
    );
    await expect(stalls.run(req('second-stall'), AbortSignal.timeout(30_000))).rejects.toBeInstanceOf(StallingError);
    expect(seen).toEqual(['precheck second', 'after second-stall INVALID_INPUT INVALID_INPUT']);
    expect(cond(await get('second-stall'), 'Stalled')).toMatchObject({ status: 'True', reason: 'INVALID_INPUT' });
    expect(await eventsAbout('second-stall')).toEqual([]);
    await create('second-final');
    await loop([async (s) => (s.stalled('SyncFailed', 'decided by the step'), {})], extras).run(req('second-final'), AbortSignal.timeout(30_000));
    expect(cond(await get('second-final'), 'Stalled')).toMatchObject({ status: 'True', reason: 'SyncFailed', message: 'decided by the step' });
  });

  it('a retryable engine error is rethrown as it is, and a typed ReconcileError sets Ready=False with its reason', async () => {
    await create('retry');
    const flaky = new StevedoreError('REGISTRY_UNAVAILABLE', 'registry.invalid: 503', { retryable: true });
    const err = await loop([
      async () => {
        throw flaky;
      },
    ])
      .run(req('retry'), AbortSignal.timeout(30_000))
      .catch((e: unknown) => e);
    expect(err).toBe(flaky);
    let m = await get('retry');
    // Not the object's fault and no unknownErrorReason: status says nothing about it.
    expect(m.status?.conditions ?? []).toEqual([]);

    const typed = errorsFor<ImageMirrorReason>();
    const err2 = await loop([
      async () => {
        throw typed.failed('CredentialsNotFound', 'Secret skeleton/creds not found');
      },
    ])
      .run(req('retry'), AbortSignal.timeout(30_000))
      .catch((e: unknown) => e);
    expect(err2).not.toBeInstanceOf(StallingError);
    m = await get('retry');
    expect(cond(m, 'Ready')).toMatchObject({ status: 'False', reason: 'CredentialsNotFound' });
    expect(cond(m, 'Stalled')).toBeUndefined();
  });

  it('on deletion the cleanup runs while the finalizer still holds the object; then the object goes, with no status patch and no step', async () => {
    await create('gone');
    const steps: MirrorStep[] = [
      async () => {
        throw new Error('no step runs for an object being deleted');
      },
    ];
    let held: string[] | undefined;
    let later = true;
    const l = loop(steps, {
      finalize: async (m) => {
        held = (await get(m.metadata.name!)).metadata.finalizers;
        return later ? { requeueAfterMs: 500 } : undefined;
      },
    });
    await l.run(req('gone'), AbortSignal.timeout(30_000)).catch(() => undefined); // adds the finalizer
    expect((await get('gone')).metadata.finalizers).toContain(IMAGE_MIRROR_FINALIZER);
    await client.json('DELETE', mirrorsPath(NS, 'gone'));
    const deleting = await get('gone');
    expect(deleting.metadata.deletionTimestamp).toBeDefined();
    const n0 = client.statusPatches();
    // The cleanup is not done yet: the finalizer stays and the reconcile comes back.
    expect(await l.run(req('gone'), AbortSignal.timeout(30_000))).toEqual({ requeueAfterMs: 500 });
    expect(held).toContain(IMAGE_MIRROR_FINALIZER);
    expect((await get('gone')).metadata.finalizers).toContain(IMAGE_MIRROR_FINALIZER);
    later = false;
    held = undefined;
    expect(await l.run(req('gone'), AbortSignal.timeout(30_000))).toEqual({});
    expect(held).toContain(IMAGE_MIRROR_FINALIZER);
    expect(client.statusPatches() - n0).toBe(0);
    const after = await get('gone').catch((e: unknown) => e);
    expect(isNotFound(after)).toBe(true);
  });

  it('with guardStatus, a status written from a stale read fails with a conflict instead of winning; progress() moves the guard on', async () => {
    await create('guard');
    const l = loop(
      [
        async (s) => {
          s.reconciling('Progressing', 'working');
          await s.progress();
          s.ready(true, 'Succeeded', 'done');
          return undefined;
        },
      ],
      { guardStatus: true },
    );
    await l.run(req('guard'), AbortSignal.timeout(30_000)); // two guarded patches in a row: the second from the first's version
    const fresh = await get('guard');
    expect(cond(fresh, 'Ready')).toMatchObject({ status: 'True', reason: 'Succeeded' });
    // Another writer (the node's agent) changes status after this read.
    const stale = structuredClone(fresh);
    await client.patch(mirrorsPath(NS, 'guard', 'status'), { status: { lastSyncTime: '2026-02-02T00:00:00Z' } });
    const err = await loop(
      [
        async (s) => {
          s.ready(false, 'SyncFailed', 'from a stale read');
          return undefined;
        },
      ],
      { guardStatus: true },
    )
      .run({ ...req('guard'), cached: stale }, AbortSignal.timeout(30_000))
      .catch((e: unknown) => e);
    expect(isConflict(err)).toBe(true);
    const after = await get('guard');
    expect(after.status?.lastSyncTime).toBe('2026-02-02T00:00:00Z');
    expect(cond(after, 'Ready')).toMatchObject({ status: 'True', reason: 'Succeeded' });
  });

  it('the steps of one reconcile share a typed context the kind makes fresh for each reconcile; a failing newContext is judged like a step', async () => {
    await create('ctx');
    /** What the steps of one reconcile hand each other. */
    type Ctx = { readonly generation: number; seen: string[] };
    const made: Ctx[] = [];
    let fail = false;
    const base = {
      kind: 'ImageMirror',
      resource: IMAGE_MIRROR_RESOURCE,
      finalizer: IMAGE_MIRROR_FINALIZER,
      statusKeys: ['observedGeneration', 'conditions'],
    } satisfies Partial<ReconcileKind<ImageMirror, ImageMirrorStatus, ImageMirrorReason, Ctx>>;
    const l = new ReconcileLoop<ImageMirror, ImageMirrorStatus, ImageMirrorReason, Ctx>(client, events, {
      ...base,
      newContext: (s) => {
        if (fail) throw errorsFor<ImageMirrorReason>().failed('SyncFailed', 'no context today');
        const c: Ctx = { generation: s.generation, seen: [] };
        made.push(c);
        return c;
      },
      steps: [
        async (s) => {
          // Fresh: nothing from an earlier reconcile.
          expect(s.ctx.seen).toEqual([]);
          s.ctx.seen.push('first');
          return undefined;
        },
        stopWhenStalled(),
        async (s) => {
          s.ctx.seen.push(`second after ${s.ctx.seen.join(',')}`);
          s.status.observedGeneration = s.ctx.generation;
          return undefined;
        },
      ],
    });
    await l.run(req('ctx'), AbortSignal.timeout(30_000));
    await l.run(req('ctx'), AbortSignal.timeout(30_000));
    expect(made).toHaveLength(2);
    expect(made[0]).not.toBe(made[1]);
    for (const c of made) expect(c).toEqual({ generation: 1, seen: ['first', 'second after first'] });
    expect((await get('ctx')).status?.observedGeneration).toBe(1);

    fail = true;
    await expect(l.run(req('ctx'), AbortSignal.timeout(30_000))).rejects.toThrow('no context today');
    expect(cond(await get('ctx'), 'Ready')).toMatchObject({ status: 'False', reason: 'SyncFailed', message: 'no context today' });
    expect(made).toHaveLength(2);

    // Typed: a kind that declares a context must make it, and a step sees the context's type.
    // @ts-expect-error newContext is missing (tsc --noEmit fails if this compiles)
    const missing: ReconcileKind<ImageMirror, ImageMirrorStatus, ImageMirrorReason, Ctx> = { ...base, steps: [] };
    const typo: Step<ImageMirror, ImageMirrorStatus, ImageMirrorReason, Ctx> = async (s) => {
      // @ts-expect-error Ctx has no `seenn` (tsc --noEmit fails if this compiles)
      s.ctx.seenn.push('x');
      return undefined;
    };
    // Without a context, ctx is undefined (and typed so).
    const none: Step<ImageMirror, ImageMirrorStatus, ImageMirrorReason> = async (s) => {
      const u: undefined = s.ctx;
      expect(u).toBeUndefined();
      return {};
    };
    await loop([none]).run(req('ctx'), AbortSignal.timeout(30_000));
    expect(missing.steps).toEqual([]);
    expect(typo).toBeTypeOf('function');
  });

  it('reasons are the kind’s union', () => {
    const typed = errorsFor<ImageMirrorReason>();
    // @ts-expect-error a typo is not an ImageMirror reason (tsc --noEmit fails if this compiles)
    const e = typed.stalled('InvalidSpek', 'x');
    expect(e).toBeInstanceOf(StallingError);
  });
});
