/**
 * A real single-node Kubernetes for tests and `make cluster-up`: the loopback control plane of
 * controlplane.ts (etcd + kube-apiserver, here with Node,RBAC authorization and the NodeRestriction
 * and PodSecurity admission plugins), a registry, containerd 2 with runc >= 1.2, the kubelet, and
 * kube-scheduler + kube-controller-manager so Deployments and DaemonSets work.
 *
 * Binaries come from `make node-tools` (hack/node.mk), cached by version under
 * `${STEVEDORE_CACHE:-~/.cache/stevedore}/bin`. Everything the node writes is under its directory,
 * except a cgroup subtree of its own and the bridge (both removed by stop()).
 *
 * Network safety: the Pod subnet is checked against every route and address of the host and the
 * node refuses to start on overlap (node-net.ts); Pods get no default route and no masquerade. The
 * registry listens on the bridge's own address, which Pods and this machine reach and nothing else.
 */
import { existsSync, readFileSync } from 'node:fs';
import { appendFile, chmod, copyFile, mkdir, mkdtemp, readFile, readdir, readlink, rm, rmdir, writeFile } from 'node:fs/promises';
import { closeSync, openSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { cacheDir, kubectlPath, pinnedKubeVersion, startControlPlane, type ControlPlane } from './controlplane.js';
import { freePort, sleep } from './net.js';
import { containerdConfig, cniConflist, kubeconfig, kubeletConfig, nodePaths, registryHostsToml, type NodePaths } from './node-config.js';
import { chooseSubnet, conflicts, gatewayOf, PodNetworkOverlapError, readHostNetworks } from './node-net.js';
import { runChecked, runCommand, spawnManaged, type ManagedProcess } from './procs.js';
import { startRegistry, type TestRegistry } from './registry.js';

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const CONTAINER_LOG_LINKS = '/var/log/containers';

/** A version pinned in hack/node.mk (`NAME := vX.Y.Z`). */
export function nodeToolVersion(name: string): string {
  const mk = readFileSync(join(REPO_ROOT, 'hack', 'node.mk'), 'utf8');
  const m = new RegExp(`^${name}\\s*:=\\s*(\\S+)`, 'm').exec(mk);
  if (!m) throw new Error(`hack/node.mk pins no ${name}`);
  return m[1]!;
}

/** Where `make node-tools` puts each part (overridden by the variables node.mk exports). */
export function nodeTools() {
  const bin = join(cacheDir(), 'bin');
  const kube = pinnedKubeVersion();
  const env = process.env;
  return {
    kubelet: env['KUBELET'] || join(bin, `kubelet-${kube}`),
    scheduler: env['KUBE_SCHEDULER'] || join(bin, `kube-scheduler-${kube}`),
    controllerManager: env['KUBE_CONTROLLER_MANAGER'] || join(bin, `kube-controller-manager-${kube}`),
    kubectl: kubectlPath(),
    containerdDir: env['CONTAINERD_DIR'] || join(bin, `containerd-${nodeToolVersion('CONTAINERD_VERSION')}`),
    runc: env['RUNC'] || join(bin, `runc-${nodeToolVersion('RUNC_VERSION')}`),
    runcStatic: env['RUNC_STATIC'] || join(bin, `runc-static-${nodeToolVersion('RUNC_VERSION')}`),
    cniBinDir: env['CNI_BIN_DIR'] || join(bin, `cni-plugins-${nodeToolVersion('CNI_PLUGINS_VERSION')}`),
    crictl: env['CRICTL'] || join(bin, `crictl-${nodeToolVersion('CRICTL_VERSION')}`),
    pause: env['NODE_PAUSE'] || join(bin, `stevedore-pause-${nodeToolVersion('NODE_HELPERS_VERSION')}`),
  };
}

/** The node parts that are not built yet (empty: the node can start). */
export function missingNodeTools(extras = true): string[] {
  const t = nodeTools();
  return [
    t.kubelet,
    ...(extras ? [t.scheduler, t.controllerManager] : []),
    join(t.containerdDir, 'containerd'),
    t.runc,
    join(t.cniBinDir, 'bridge'),
    t.crictl,
    t.pause,
    t.kubectl,
  ].filter((p) => !existsSync(p));
}

export interface NodeOptions {
  /** State directory (created; emptied first). Default: a fresh `/var/tmp/stevedore-node-*`. */
  dir?: string;
  /** Node name; default `stevedore-node`. */
  nodeName?: string;
  /** Pod subnet; default the first of 198.18.{0..15}.0/24 that overlaps none of the host's networks. */
  podSubnet?: string;
  /** OCI runtime for containerd; default runc from `make node-tools`. (A runc < 1.2 gives a node without user namespaces.) */
  runc?: string;
  /** Start kube-scheduler and kube-controller-manager (default true). */
  extras?: boolean;
  /** Files to put where the kubelet reads Localhost seccomp profiles, by relative path. */
  seccompProfiles?: Record<string, string>;
  /** Remove the state directory on stop() (default: true unless `dir` was given). */
  removeDir?: boolean;
  /** Per-step timings go here (ms), e.g. to report start-up time. */
  timings?: Record<string, number>;
}

export interface LocalNode {
  nodeName: string;
  dir: string;
  paths: NodePaths;
  controlPlane: ControlPlane;
  kubeconfigPath: string;
  kubeConfig: KubeConfig;
  /** The registry, on the bridge's address: `<gateway>:<port>`, reachable from Pods and this machine. */
  registry: TestRegistry;
  /**
   * The same registry as `127.0.0.1:<port>` (a TCP forwarder), for host-network clients that treat
   * only loopback registries as plain HTTP (the agent pulling a ContainerRun's image).
   */
  registryLoopbackHost: string;
  podSubnet: string;
  /** ClusterIP range (routed to the bridge: nothing sent there leaves the machine). */
  serviceSubnet: string;
  bridge: string;
  /** The kubelet's root dir; Localhost seccomp profiles are read from `<kubeletRoot>/seccomp`. */
  kubeletRoot: string;
  /** The sandbox image pushed to the registry. */
  pauseImage: string;
  /** `kubectl --kubeconfig <admin>` with arguments; resolves with stdout, rejects on failure. */
  kubectl(args: string[], opts?: { input?: string; timeoutMs?: number }): Promise<string>;
  /** `crictl` against this node's containerd. */
  crictl(args: string[]): Promise<string>;
  /** Tail of a component's log (kubelet, containerd, scheduler, controller-manager). */
  log(component: string, lines?: number): Promise<string>;
  stop(): Promise<void>;
}

interface Started {
  name: string;
  proc: ManagedProcess;
  log: string;
}

async function startLogged(dir: string, name: string, cmd: string, args: string[], env?: NodeJS.ProcessEnv): Promise<Started> {
  const log = join(dir, 'logs', `${name}.log`);
  const fd = openSync(log, 'a');
  try {
    const proc = await spawnManaged(cmd, args, { output: [fd, fd], ...(env ? { env } : {}) });
    await appendFile(join(dir, 'pids'), `${name} ${proc.pid}\n`);
    return { name, proc, log };
  } finally {
    closeSync(fd);
  }
}

async function tailFile(path: string, lines = 40): Promise<string> {
  try {
    return (await readFile(path, 'utf8')).trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

async function waitFor<T>(what: string, deadline: number, probe: () => Promise<T | undefined>, died?: () => Promise<string | undefined>): Promise<T> {
  let last = '';
  for (;;) {
    const dead = await died?.();
    if (dead) throw new Error(`${what}: ${dead}`);
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not ready in time${last ? ` (${last})` : ''}`);
    await sleep(100);
  }
}

/** The v1 cgroup hierarchies (cpu, memory, ...) and the unified one, mounted under /sys/fs/cgroup. */
async function cgroupHierarchies(): Promise<string[]> {
  const mounts = await readFile('/proc/self/mountinfo', 'utf8');
  return mounts
    .split('\n')
    .map((l) => l.split(' '))
    .filter((f) => f.length > 4 && f[4]!.startsWith('/sys/fs/cgroup') && /\s-\s(cgroup2?)\s/.test(f.join(' ')))
    .map((f) => f[4]!);
}

/** Removes a cgroup subtree bottom-up (rmdir only: a cgroup with processes stays and is reported). */
async function removeCgroupTree(path: string): Promise<string[]> {
  const left: string[] = [];
  let entries: string[] = [];
  try {
    entries = (await readdir(path, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name);
  } catch {
    return left;
  }
  for (const e of entries) left.push(...(await removeCgroupTree(join(path, e))));
  try {
    await rmdir(path);
  } catch (err) {
    left.push(`${path}: ${(err as Error).message}`);
  }
  return left;
}

/** Mount points under `dir`, deepest first (from /proc/self/mountinfo; octal escapes decoded). */
async function mountsUnder(dir: string): Promise<string[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  const points = text
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((p): p is string => !!p)
    .map((p) => p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((p) => p === dir || p.startsWith(`${dir}/`));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

/** PIDs of processes whose command line names `needle` (our containerd's shims carry its socket path). */
async function pidsWithArg(needle: string): Promise<number[]> {
  const out: number[] = [];
  for (const e of await readdir('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const cmd = (await readFile(`/proc/${e}/cmdline`, 'utf8')).split('\0');
      if (cmd.includes(needle)) out.push(Number(e));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/**
 * Cleans what a node left in `dir` after its processes are gone: containerd shims of its socket,
 * mounts under dir, its bridge and cgroup root (recorded in `dir/state.json`). Safe to run twice;
 * `make cluster-down` runs it after a crashed `cluster-up`.
 */
export async function cleanupNodeDir(dir: string): Promise<string[]> {
  const problems: string[] = [];
  const paths = nodePaths(dir);
  for (const pid of await pidsWithArg(paths.containerdSocket)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  for (const m of await mountsUnder(dir)) {
    const r = await runCommand('umount', ['-l', m]);
    if (r.code !== 0 && !/not mounted/.test(r.stderr)) problems.push(`umount ${m}: ${r.stderr.trim()}`);
  }
  // The kubelet links every container's log into /var/log/containers (a fixed path): ours go.
  try {
    for (const f of await readdir(CONTAINER_LOG_LINKS)) {
      const target = await readlink(join(CONTAINER_LOG_LINKS, f)).catch(() => '');
      if (target.startsWith(`${dir}/`)) await rm(join(CONTAINER_LOG_LINKS, f), { force: true });
    }
    await rmdir(CONTAINER_LOG_LINKS).catch(() => undefined); // only when nothing else is left there
  } catch {
    // no such directory
  }
  // containerd's shims keep their sockets in a fixed /run/containerd/s: remove it once empty.
  for (const d of ['/run/containerd/s', '/run/containerd/runc/k8s.io', '/run/containerd/runc', '/run/containerd']) await rmdir(d).catch(() => undefined);
  let state: { bridge?: string; cgroupRoot?: string } = {};
  try {
    state = JSON.parse(await readFile(join(dir, 'state.json'), 'utf8')) as typeof state;
  } catch {
    // never got that far
  }
  if (state.bridge) {
    const r = await runCommand('ip', ['link', 'del', state.bridge]);
    if (r.code !== 0 && !/Cannot find device/.test(r.stderr)) problems.push(`ip link del ${state.bridge}: ${r.stderr.trim()}`);
  }
  if (state.cgroupRoot) {
    for (const h of await cgroupHierarchies()) problems.push(...(await removeCgroupTree(join(h, state.cgroupRoot))));
  }
  return problems;
}

/** Starts the whole node; on failure everything started so far is stopped again. */
export async function startNode(opts: NodeOptions = {}): Promise<LocalNode> {
  const missing = missingNodeTools(opts.extras ?? true);
  if (missing.length) throw new Error(`node parts missing (build them with \`make node-tools\`): ${missing.join(', ')}`);
  const t = nodeTools();
  const t0 = Date.now();
  const timings = opts.timings ?? {};
  const mark = (k: string, since: number) => (timings[k] = Date.now() - since);
  const nodeName = opts.nodeName ?? 'stevedore-node';
  const dir = opts.dir ?? (await mkdtemp('/var/tmp/stevedore-node-'));
  const removeDir = opts.removeDir ?? !opts.dir;
  if (opts.dir) {
    await cleanupNodeDir(dir);
    await rm(dir, { recursive: true, force: true });
  }
  const paths = nodePaths(dir);
  // mkdtemp makes 0700: user-namespaced containers (an unprivileged id on the node) must traverse
  // it to reach their rootfs and volumes.
  await mkdir(dir, { recursive: true });
  await chmod(dir, 0o755);
  for (const d of [
    join(dir, 'logs'),
    paths.containerdRoot,
    paths.containerdState,
    paths.certsDir,
    paths.cniConfDir,
    paths.cniDataDir,
    paths.kubeletRoot,
    paths.podLogs,
    paths.volumePlugins,
    paths.seccompDir,
    join(dir, 'pki'),
  ]) {
    await mkdir(d, { recursive: true });
  }

  // Network first: refuse before anything runs. Creating the bridge claims its subnet (another
  // node starting at the same moment finds the name taken and moves on to the next candidate).
  let claimed: { subnet: string; index: number } | undefined;
  const taken = new Set<number>();
  while (!claimed) {
    const c = chooseSubnet(await readHostNetworks(), opts.podSubnet, taken);
    const r = await runCommand('ip', ['link', 'add', 'name', `stvd${c.index}`, 'type', 'bridge']);
    if (r.code === 0) claimed = c;
    else if (/File exists/.test(r.stderr) && !opts.podSubnet) taken.add(c.index);
    else throw new Error(`ip link add name stvd${c.index} type bridge: ${r.stderr.trim()}`);
  }
  const { subnet, index } = claimed;
  const gateway = gatewayOf(subnet);
  const bridge = `stvd${index}`;
  // Service ClusterIPs: no kube-proxy serves them, but the kubelet still gives every Pod
  // KUBERNETES_SERVICE_HOST; a hostNetwork Pod would send to it through the default route. The
  // range is routed to our bridge, so whatever is sent there stays on this machine.
  const serviceSubnet = `198.18.${16 + index}.0/24`;
  const cgroupRoot = `/stevedore-node-${index}`;
  await writeFile(join(dir, 'state.json'), JSON.stringify({ bridge, cgroupRoot, subnet, nodeName }));
  const serviceConflicts = conflicts(serviceSubnet, await readHostNetworks(), bridge);
  if (serviceConflicts.length) {
    await cleanupNodeDir(dir);
    if (removeDir) await rm(dir, { recursive: true, force: true });
    throw new PodNetworkOverlapError(serviceSubnet, serviceConflicts);
  }

  const procs: Started[] = [];
  let controlPlane: ControlPlane | undefined;
  let registry: TestRegistry | undefined;
  let forwarder: { host: string; close(): Promise<void> } | undefined;
  let stopped: Promise<void> | undefined;
  const stop = () => {
    stopped ??= (async () => {
      const byName = (n: string) => procs.find((p) => p.name === n);
      for (const n of ['kube-controller-manager', 'kube-scheduler', 'kubelet']) await byName(n)?.proc.stop(10_000);
      const containerd = byName('containerd');
      if (containerd && !containerd.proc.hasExited()) {
        // Through the CRI, so containerd tears down netns (CNI DEL), user namespaces and overlays.
        await runCommand(t.crictl, ['--runtime-endpoint', `unix://${paths.containerdSocket}`, '--timeout', '20s', 'rmp', '-fa'], { timeoutMs: 60_000 });
      }
      await containerd?.proc.stop(10_000);
      await cleanupNodeDir(dir);
      await controlPlane?.stop();
      await forwarder?.close();
      await registry?.stop();
      if (removeDir) await rm(dir, { recursive: true, force: true, maxRetries: 3 });
    })();
    return stopped;
  };

  try {
    // The bridge exists before the first Pod so the registry can listen on its address.
    let s = Date.now();
    await runChecked('ip', ['addr', 'add', `${gateway}/${subnet.split('/')[1]}`, 'dev', bridge]);
    await runChecked('ip', ['link', 'set', bridge, 'up']);
    await runChecked('ip', ['route', 'add', serviceSubnet, 'dev', bridge]);
    const hierarchies = await cgroupHierarchies();
    for (const h of hierarchies) if (!h.endsWith('/unified')) await mkdir(join(h, cgroupRoot), { recursive: true });

    const cpDir = join(dir, 'controlplane');
    const [cp, reg] = await Promise.all([
      startControlPlane({
        dir: cpDir,
        keepDir: true,
        authorizationModes: ['Node', 'RBAC'],
        admission: { enable: ['NodeRestriction', 'PodSecurity'], disable: [] },
        clientCerts: [
          { name: 'kubelet', subject: `/O=system:nodes/CN=system:node:${nodeName}` },
          { name: 'apiserver-kubelet-client', subject: '/O=system:masters/CN=kube-apiserver-kubelet-client' },
        ],
        extraApiserverArgs: [
          `--kubelet-client-certificate=${join(cpDir, 'apiserver-kubelet-client.crt')}`,
          `--kubelet-client-key=${join(cpDir, 'apiserver-kubelet-client.key')}`,
          '--kubelet-preferred-address-types=InternalIP,Hostname',
          `--service-cluster-ip-range=${serviceSubnet}`,
        ],
      }).then((c) => (mark('apiserver', s), c)),
      startRegistry({ name: 'node-registry', address: gateway, logLevel: 'warn' }).then((r) => (mark('registry', s), r)),
    ]);
    controlPlane = cp;
    registry = reg;
    forwarder = await forwardTcp(reg.host);
    const ca = join(cpDir, 'ca.crt');
    const kubeletKubeconfig = join(dir, 'kubelet.kubeconfig');
    await writeFile(
      kubeletKubeconfig,
      kubeconfig(cp.server, ca, { name: `system:node:${nodeName}`, certFile: join(cpDir, 'kubelet.crt'), keyFile: join(cpDir, 'kubelet.key') }),
      { mode: 0o600 },
    );
    const adminKubeconfig = join(dir, 'admin.kubeconfig');
    await copyFile(cp.kubeconfigPath, adminKubeconfig);

    // The sandbox image: our own pause program, pushed to our registry.
    s = Date.now();
    const pauseImage = `${reg.host}/stevedore/pause:${nodeToolVersion('NODE_HELPERS_VERSION')}`;
    await pushPauseImage(t.pause, pauseImage, join(dir, 'pause'));
    mark('pauseImage', s);

    const hostsDir = join(paths.certsDir, reg.host);
    await mkdir(hostsDir, { recursive: true });
    await writeFile(join(hostsDir, 'hosts.toml'), registryHostsToml(reg.host));
    const containerdToml = join(dir, 'etc', 'containerd', 'config.toml');
    await writeFile(containerdToml, containerdConfig(paths, { runc: opts.runc ?? t.runc, cniBinDir: t.cniBinDir, sandboxImage: pauseImage }));
    await writeFile(join(paths.cniConfDir, '10-stevedore.conflist'), cniConflist(paths, { bridge, subnet, gateway }));
    for (const [rel, content] of Object.entries(opts.seccompProfiles ?? {})) {
      await mkdir(dirname(join(paths.seccompDir, rel)), { recursive: true });
      await writeFile(join(paths.seccompDir, rel), content);
    }

    s = Date.now();
    const env = { ...process.env, PATH: `${t.containerdDir}:${process.env['PATH'] ?? '/usr/bin:/bin'}` };
    const containerd = await startLogged(dir, 'containerd', join(t.containerdDir, 'containerd'), ['--config', containerdToml], env);
    procs.push(containerd);
    const deadline = Date.now() + 60_000;
    await waitFor(
      'containerd',
      deadline,
      async () => {
        const r = await runCommand(join(t.containerdDir, 'ctr'), ['--address', paths.containerdSocket, 'version'], { timeoutMs: 5000 });
        return r.code === 0 ? true : undefined;
      },
      async () => (containerd.proc.hasExited() ? `exited:\n${await tailFile(containerd.log)}` : undefined),
    );
    mark('containerd', s);

    s = Date.now();
    const [port, healthzPort] = await Promise.all([freePort(), freePort()]);
    await writeFile(paths.kubeletConfig, kubeletConfig(paths, { caFile: ca, cgroupRoot, port, healthzPort }));
    const kubelet = await startLogged(dir, 'kubelet', t.kubelet, [
      `--config=${paths.kubeletConfig}`,
      `--kubeconfig=${kubeletKubeconfig}`,
      `--hostname-override=${nodeName}`,
      '--node-ip=127.0.0.1',
      `--root-dir=${paths.kubeletRoot}`,
      `--cert-dir=${join(dir, 'pki')}`,
      '--v=2',
    ]);
    procs.push(kubelet);
    if (opts.extras ?? true) {
      const adminArgs = [`--kubeconfig=${adminKubeconfig}`, '--leader-elect=false', '--secure-port=0'];
      procs.push(await startLogged(dir, 'kube-scheduler', t.scheduler, adminArgs));
      procs.push(
        await startLogged(dir, 'kube-controller-manager', t.controllerManager, [
          ...adminArgs,
          `--root-ca-file=${ca}`,
          `--service-account-private-key-file=${join(cpDir, 'sa.key')}`,
          '--use-service-account-credentials=false',
          '--controllers=*,-nodeipam,-service-lb-controller,-cloud-node-lifecycle,-persistentvolume-binder,-persistentvolume-expander',
          '--concurrent-gc-syncs=5',
        ]),
      );
    }

    const core = cp.kubeConfig.makeApiClient(CoreV1Api);
    await waitFor(
      'node Ready',
      deadline,
      async () => {
        const n = await core.readNode({ name: nodeName });
        return n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ? n : undefined;
      },
      async () => {
        for (const p of procs) if (p.proc.hasExited()) return `${p.name} exited:\n${await tailFile(p.log)}`;
        return undefined;
      },
    );
    // The kubelet refuses a loopback node IP and publishes no address; the API server needs one to
    // reach the kubelet (logs, exec).
    await cp.request('PATCH', `/api/v1/nodes/${nodeName}/status`, {
      headers: { 'content-type': 'application/merge-patch+json' },
      body: JSON.stringify({
        status: {
          addresses: [
            { type: 'InternalIP', address: '127.0.0.1' },
            { type: 'Hostname', address: 'localhost' },
          ],
        },
      }),
    });
    mark('node', s);
    timings['total'] = Date.now() - t0;
    await writeFile(join(dir, 'timings.json'), JSON.stringify(timings));

    const kubectl = async (args: string[], o: { input?: string; timeoutMs?: number } = {}) =>
      (
        await runChecked(t.kubectl, ['--kubeconfig', adminKubeconfig, ...args], {
          ...(o.input !== undefined ? { input: o.input } : {}),
          timeoutMs: o.timeoutMs ?? 60_000,
        })
      ).stdout;
    const crictl = async (args: string[]) => (await runChecked(t.crictl, ['--runtime-endpoint', `unix://${paths.containerdSocket}`, ...args])).stdout;
    const log = (component: string, lines = 60) => tailFile(join(dir, 'logs', `${component}.log`), lines);
    return {
      nodeName,
      dir,
      paths,
      controlPlane: cp,
      kubeconfigPath: adminKubeconfig,
      kubeConfig: cp.kubeConfig,
      registry: reg,
      registryLoopbackHost: forwarder.host,
      podSubnet: subnet,
      serviceSubnet,
      bridge,
      kubeletRoot: paths.kubeletRoot,
      pauseImage,
      kubectl,
      crictl,
      log,
      stop,
    };
  } catch (err) {
    const logs: string[] = [];
    for (const p of procs) logs.push(`--- ${p.name}:\n${await tailFile(p.log, 15)}`);
    await stop();
    if (logs.length && err instanceof Error) err.message += `\n${logs.join('\n')}`;
    throw err;
  }
}

/**
 * Pushes the pause program as a one-layer image with Stevedore's own builder (FROM scratch, no
 * RUN step), so the node never pulls a sandbox image from outside this machine.
 */
async function pushPauseImage(pauseBin: string, ref: string, work: string): Promise<void> {
  await mkdir(work, { recursive: true });
  await copyFile(pauseBin, join(work, 'pause'));
  await writeFile(join(work, 'Containerfile'), 'FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n');
  const stevedore = join(REPO_ROOT, 'bin', 'stevedore.js');
  await runChecked(process.execPath, [stevedore, 'build', '--timestamp', '0', '--tls-verify=false', '-f', join(work, 'Containerfile'), '-t', ref, work], {
    timeoutMs: 60_000,
    env: { ...process.env, STEVEDORE_ROOT: join(work, 'store') },
  });
}

/** A plain TCP forwarder from a free 127.0.0.1 port to `target` (`host:port`). */
async function forwardTcp(target: string): Promise<{ host: string; close(): Promise<void> }> {
  const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(port, host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
