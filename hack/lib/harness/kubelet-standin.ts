/**
 * A TEST STAND-IN FOR THE KUBELET. There is no kubelet (and no container runtime for Pods) on the
 * test machine, so this plays its part for build Pods, against the real kube-apiserver:
 *
 * - it watches Pods in one namespace, binds each new one to a pretend node (as the scheduler would),
 * - materialises the Pod's volumes as temp directories (emptyDir; secret and projected secret
 *   volumes with their items and modes, read from the API server),
 * - runs the init containers one after another, then the containers, as LOCAL PROCESSES: the
 *   image's entrypoint comes from `entrypoints` (the Stevedore image maps to `node bin/stevedore.js`),
 *   args and env come from the Pod, every mount path (and the termination-message path) in args,
 *   env and workingDir is rewritten to its temp directory, and the process runs as the Pod's
 *   runAsUser/runAsGroup (volumes are chowned to fsGroup, as the kubelet does) — inside a user
 *   namespace of its own when the Pod says `hostUsers: false`,
 * - writes Pod status as a kubelet would: phase, init/container statuses with running and terminated
 *   states, exit codes, and the termination message read from the file (or, with
 *   FallbackToLogsOnError, the log tail), and enforces activeDeadlineSeconds,
 * - on graceful deletion it kills the processes (SIGTERM, then SIGKILL) and finishes the deletion.
 *
 * It does NOT isolate anything: no namespaces, cgroups, seccomp, capabilities or image pulls. What
 * it proves is the controller's side of the contract (Pod spec in, status and termination message
 * out) with the real builder running the real commands.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, chown, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { V1Container, V1ContainerStatus, V1Pod } from '@kubernetes/client-node';
import type { KubeConfig } from '@kubernetes/client-node';
import { KubeClient, isNotFound, resourcePath } from '../../../src/k8s/runtime/client.js';
import { Informer } from '../../../src/k8s/runtime/informer.js';
import { rootLogger } from '../../../src/util/log.js';
import { killOnExit } from './procs.js';

export interface KubeletStandInOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  nodeName?: string;
  /** Image → the command its entrypoint stands for, e.g. `{ 'stevedore:test': [node, 'bin/stevedore.js'] }`. */
  entrypoints: Record<string, string[]>;
  /** Base environment of every process (the Pod's env is added on top). */
  env?: NodeJS.ProcessEnv;
  /** Run processes as the Pod's runAsUser (default true; needs root). */
  honourRunAsUser?: boolean;
}

export interface StandInRun {
  pod: string;
  container: string;
  pid?: number;
  /** `uid:gid`, with ` userns` when the process ran in the Pod's own user namespace; `host` otherwise. */
  user: string;
  exitCode?: number | null;
  signal?: NodeJS.Signals | null;
  log: string;
}

export interface KubeletStandIn {
  /** Every container process started so far, in order. */
  readonly runs: StandInRun[];
  /** True while a process of this Pod is alive. */
  isRunning(pod: string): boolean;
  stop(): Promise<void>;
}

const PODS = { group: '', version: 'v1', plural: 'pods' };

/** Host ids backing a `hostUsers: false` Pod's user namespace (ids 0..65535 inside), as the kubelet allocates. */
const USERNS_BASE = 1_000_000;
const USERNS_SIZE = 65536;

/**
 * Runs a command as UID:GID inside a new user namespace mapping 0..SIZE-1 to BASE..: what a
 * `hostUsers: false` Pod's processes get. Root writes the maps itself (no /etc/subuid needed), the
 * child drops to the Pod's ids, dies with its parent, and signals are passed on.
 * usage: python3 -c USERNS_EXEC BASE SIZE UID GID COMMAND [ARGS...]
 */
const USERNS_EXEC = `
import ctypes, os, signal, sys
libc = ctypes.CDLL(None, use_errno=True)
base, size, uid, gid = (int(a) for a in sys.argv[1:5])
ready_r, ready_w = os.pipe(); go_r, go_w = os.pipe()
pid = os.fork()
if pid == 0:
    if libc.unshare(0x10000000) != 0:
        e = ctypes.get_errno(); raise OSError(e, os.strerror(e))
    os.write(ready_w, b'x'); os.read(go_r, 1)
    os.setgroups([]); os.setresgid(gid, gid, gid); os.setresuid(uid, uid, uid)
    libc.prctl(1, signal.SIGKILL)
    os.execvp(sys.argv[5], sys.argv[5:])
os.read(ready_r, 1)
for name in ('uid_map', 'gid_map'):
    with open('/proc/%d/%s' % (pid, name), 'w') as f:
        f.write('0 %d %d\\n' % (base, size))
for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(sig, lambda s, _f: os.kill(pid, s))
os.write(go_w, b'x')
while True:
    try:
        _, status = os.waitpid(pid, 0); break
    except InterruptedError:
        continue
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
`;
const now = () => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');

interface PodRun {
  dir: string;
  child?: ChildProcess;
  killed: boolean;
  done: Promise<void>;
}

function mapPath(value: string, mounts: [string, string][]): string {
  for (const [from, to] of mounts) {
    if (value === from) return to;
    if (value.startsWith(`${from}/`)) return to + value.slice(from.length);
    const eq = value.indexOf('=');
    if (eq > 0 && value.startsWith('--')) {
      const rest = value.slice(eq + 1);
      if (rest === from || rest.startsWith(`${from}/`)) return `${value.slice(0, eq + 1)}${to}${rest.slice(from.length)}`;
    }
  }
  return value;
}

export async function startKubeletStandIn(o: KubeletStandInOptions): Promise<KubeletStandIn> {
  const client = new KubeClient(o.kubeConfig);
  const node = o.nodeName ?? 'kubelet-standin';
  const log = rootLogger.child({ component: 'kubelet-standin' }, { level: process.env.STANDIN_LOG ?? 'warn' });
  const abort = new AbortController();
  const pods = new Map<string, PodRun>();
  const runs: StandInRun[] = [];
  const honour = o.honourRunAsUser ?? process.getuid?.() === 0;
  const podPath = (name: string, sub?: string) => resourcePath(PODS, o.namespace, name, sub);

  const patchStatus = async (name: string, status: Record<string, unknown>) => {
    try {
      await client.patch(podPath(name, 'status'), { status });
    } catch (err) {
      if (!isNotFound(err)) log.warn({ pod: name, err: (err as Error).message }, 'status patch failed');
    }
  };

  const materialise = async (pod: V1Pod, dir: string, uid?: number, gid?: number): Promise<Map<string, string>> => {
    const vols = new Map<string, string>();
    for (const v of pod.spec?.volumes ?? []) {
      const host = join(dir, 'volumes', v.name);
      await mkdir(host, { recursive: true });
      await chmod(dirname(host), 0o711);
      vols.set(v.name, host);
      const secrets: { name: string; items?: { key: string; path: string; mode?: number }[]; mode?: number }[] = [];
      if (v.secret) secrets.push({ name: v.secret.secretName!, items: v.secret.items, mode: v.secret.defaultMode });
      for (const s of v.projected?.sources ?? []) if (s.secret) secrets.push({ name: s.secret.name!, items: s.secret.items, mode: v.projected!.defaultMode });
      for (const s of secrets) {
        const secret = await client.get<{ data?: Record<string, string> }>(resourcePath({ group: '', version: 'v1', plural: 'secrets' }, o.namespace, s.name));
        const items: { key: string; path: string; mode?: number }[] = s.items ?? Object.keys(secret.data ?? {}).map((key) => ({ key, path: key }));
        for (const it of items) {
          const file = join(host, it.path);
          await mkdir(dirname(file), { recursive: true });
          await writeFile(file, Buffer.from(secret.data?.[it.key] ?? '', 'base64'), { mode: it.mode ?? s.mode ?? 0o644 });
          if (gid !== undefined) await chown(file, 0, gid);
          if (uid !== undefined) await chown(file, uid, gid ?? uid);
        }
      }
      if (uid !== undefined) await chown(host, uid, gid ?? uid);
    }
    return vols;
  };

  const runContainer = (pod: V1Pod, run: PodRun, c: V1Container, vols: Map<string, string>, uid?: number, gid?: number, userns = false) =>
    new Promise<{ exitCode: number; signal: NodeJS.Signals | null; message: string; startedAt: string; finishedAt: string }>((resolve, reject) => {
      const name = pod.metadata!.name!;
      const termFile = join(run.dir, `termination-${c.name}`);
      const mounts: [string, string][] = (c.volumeMounts ?? []).map((m) => [m.mountPath, vols.get(m.name)!] as [string, string]);
      mounts.push([c.terminationMessagePath ?? '/dev/termination-log', termFile]);
      mounts.sort((a, b) => b[0].length - a[0].length);
      // The image's entrypoint is a host command already (node and bin/stevedore.js): only the Pod's
      // own command and args name container paths. Mapping both broke runs from a checkout under
      // /tmp, since build Pods mount an emptyDir at /tmp.
      const entry = c.command ? c.command.map((a) => mapPath(a, mounts)) : o.entrypoints[c.image!];
      if (!entry) return reject(new Error(`kubelet stand-in: no entrypoint known for image ${c.image}`));
      const argv = [...entry, ...(c.args ?? []).map((a) => mapPath(a, mounts))];
      const env: NodeJS.ProcessEnv = { ...(o.env ?? { PATH: process.env.PATH }) };
      for (const e of c.env ?? []) {
        if (e.valueFrom) return reject(new Error(`kubelet stand-in: env valueFrom is not supported (${e.name})`));
        env[e.name] = mapPath(e.value ?? '', mounts);
      }
      const cwd = c.workingDir ? mapPath(c.workingDir, mounts) : run.dir;
      const startedAt = now();
      void writeFile(termFile, '').then(async () => {
        const shift = userns ? USERNS_BASE : 0;
        if (uid !== undefined) await chown(termFile, uid + shift, (gid ?? uid) + shift);
        const child =
          userns && uid !== undefined
            ? spawn('python3', ['-c', USERNS_EXEC, String(USERNS_BASE), String(USERNS_SIZE), String(uid), String(gid ?? uid), ...argv], {
                cwd,
                env,
                stdio: ['ignore', 'pipe', 'pipe'],
              })
            : spawn(argv[0]!, argv.slice(1), { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], uid, gid });
        killOnExit(child);
        run.child = child;
        const user = uid === undefined ? 'host' : `${uid}:${gid ?? uid}${userns ? ' userns' : ''}`;
        const record: StandInRun = { pod: name, container: c.name, pid: child.pid, user, log: '' };
        runs.push(record);
        child.stdout!.on('data', (b: Buffer) => (record.log += b.toString()));
        child.stderr!.on('data', (b: Buffer) => (record.log += b.toString()));
        child.on('error', reject);
        child.on('close', async (code, signal) => {
          run.child = undefined;
          record.exitCode = code;
          record.signal = signal;
          let message = (await readFile(termFile, 'utf8').catch(() => '')).slice(0, 4096);
          const exitCode = code ?? 128 + (signal === 'SIGKILL' ? 9 : 15);
          if (!message && exitCode !== 0 && c.terminationMessagePolicy === 'FallbackToLogsOnError') {
            message = record.log.trimEnd().split('\n').slice(-80).join('\n').slice(-2048);
          }
          resolve({ exitCode, signal, message, startedAt, finishedAt: now() });
        });
      }, reject);
    });

  const waitingStatus = (c: V1Container, reason = 'PodInitializing'): V1ContainerStatus => ({
    name: c.name,
    image: c.image!,
    imageID: '',
    ready: false,
    restartCount: 0,
    state: { waiting: { reason } },
  });

  const runPod = async (pod: V1Pod, run: PodRun) => {
    const name = pod.metadata!.name!;
    const sc = pod.spec?.securityContext;
    const uid = honour ? (sc?.runAsUser ?? undefined) : undefined;
    const gid = honour ? (sc?.fsGroup ?? sc?.runAsGroup ?? uid) : undefined;
    // hostUsers: false: the processes run in a user namespace; on the host their files belong to
    // the shifted ids (the kubelet uses idmapped mounts for the same effect).
    const userns = honour && pod.spec?.hostUsers === false;
    const shift = userns ? USERNS_BASE : 0;
    const inits = pod.spec?.initContainers ?? [];
    const mains = pod.spec?.containers ?? [];
    const initStatus: V1ContainerStatus[] = inits.map((c) => waitingStatus(c));
    const mainStatus: V1ContainerStatus[] = mains.map((c) => waitingStatus(c));
    const startTime = now();
    const put = (phase: string, extra: Record<string, unknown> = {}) =>
      patchStatus(name, {
        phase,
        startTime,
        hostIP: '127.0.0.1',
        podIP: '127.0.0.1',
        initContainerStatuses: initStatus,
        containerStatuses: mainStatus,
        ...extra,
      });
    await put('Pending');
    const deadline = pod.spec?.activeDeadlineSeconds;
    let deadlineHit = false;
    const timer = deadline
      ? setTimeout(() => {
          deadlineHit = true;
          run.killed = true;
          run.child?.kill('SIGKILL');
        }, deadline * 1000)
      : undefined;
    try {
      const vols = await materialise(pod, run.dir, uid === undefined ? undefined : uid + shift, gid === undefined ? undefined : gid + shift);
      const step = async (c: V1Container, list: V1ContainerStatus[], i: number) => {
        list[i] = { ...list[i]!, state: { running: { startedAt: now() as unknown as Date } }, started: true };
        await put(list === initStatus ? 'Pending' : 'Running');
        const r = await runContainer(pod, run, c, vols, uid, gid, userns);
        list[i] = {
          ...list[i]!,
          started: false,
          state: {
            terminated: {
              exitCode: r.exitCode,
              reason: r.exitCode === 0 ? 'Completed' : 'Error',
              message: r.message || undefined,
              startedAt: r.startedAt as unknown as Date,
              finishedAt: r.finishedAt as unknown as Date,
            },
          },
        };
        return r.exitCode;
      };
      for (const [i, c] of inits.entries()) {
        if (run.killed) break;
        if ((await step(c, initStatus, i)) !== 0) {
          for (const [j, m] of mains.entries()) mainStatus[j] = waitingStatus(m, 'PodInitializing');
          if (!run.killed) await put('Failed');
          return;
        }
      }
      if (run.killed) {
        if (deadlineHit) await put('Failed', { reason: 'DeadlineExceeded', message: `Pod was active on the node longer than the specified deadline` });
        return;
      }
      const codes = await Promise.all(mains.map((c, i) => step(c, mainStatus, i)));
      if (deadlineHit) await put('Failed', { reason: 'DeadlineExceeded', message: `Pod was active on the node longer than the specified deadline` });
      else if (!run.killed) await put(codes.every((c) => c === 0) ? 'Succeeded' : 'Failed');
    } catch (err) {
      log.warn({ pod: name, err: (err as Error).message }, 'running pod failed');
      await put('Failed', { reason: 'StandInError', message: (err as Error).message });
    } finally {
      if (timer) clearTimeout(timer);
    }
  };

  const kill = async (name: string) => {
    const run = pods.get(name);
    if (!run) return;
    run.killed = true;
    run.child?.kill('SIGTERM');
    const hard = setTimeout(() => run.child?.kill('SIGKILL'), 2000);
    await run.done;
    clearTimeout(hard);
  };

  const onPod = (pod: V1Pod) => {
    const name = pod.metadata!.name!;
    if (pod.metadata?.deletionTimestamp) {
      // Graceful deletion: stop the containers, then tell the API server they are gone.
      log.debug({ pod: name }, 'graceful deletion: killing');
      void kill(name).then(async () => {
        log.debug({ pod: name }, 'killed; deleting');
        try {
          const r = await client.json<{ metadata?: { deletionGracePeriodSeconds?: number } }>('DELETE', `${podPath(name)}?gracePeriodSeconds=0`);
          log.debug({ pod: name, grace: r?.metadata?.deletionGracePeriodSeconds }, 'deleted');
        } catch (err) {
          if (!isNotFound(err)) log.warn({ pod: name, err: (err as Error).message }, 'final delete failed');
        }
      });
      return;
    }
    if (pods.has(name) || pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') return;
    const run: PodRun = { dir: '', killed: false, done: Promise.resolve() };
    pods.set(name, run);
    run.done = (async () => {
      run.dir = await mkdtemp(join(tmpdir(), `kubelet-standin-${name}-`));
      // The Pod's user must reach its volumes below this directory (mkdtemp makes it 0700).
      await chmod(run.dir, 0o711);
      if (!pod.spec?.nodeName) {
        await client.create(podPath(name, 'binding'), {
          apiVersion: 'v1',
          kind: 'Binding',
          metadata: { name },
          target: { apiVersion: 'v1', kind: 'Node', name: node },
        });
      }
      await runPod(pod, run);
    })().catch((err: Error) => log.warn({ pod: name, err: err.message }, 'stand-in failed'));
  };

  const informer = new Informer<V1Pod & { metadata: NonNullable<V1Pod['metadata']> }>(client, PODS, { namespace: o.namespace, log });
  informer.addHandlers({
    onAdd: onPod,
    onUpdate: (_a, b) => onPod(b),
    onDelete: (p) => void kill(p.metadata.name!),
  });
  const running = informer.run(abort.signal);
  await informer.waitForSync();

  return {
    runs,
    isRunning: (pod) => pods.get(pod)?.child !== undefined,
    stop: async () => {
      abort.abort();
      await Promise.all([...pods.keys()].map((n) => kill(n)));
      await running;
      await Promise.all([...pods.values()].map((r) => (r.dir ? rm(r.dir, { recursive: true, force: true }) : undefined)));
    },
  };
}
