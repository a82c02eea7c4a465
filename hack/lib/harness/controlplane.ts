/**
 * A real Kubernetes control plane for tests: etcd plus the upstream kube-apiserver on loopback,
 * with generated certificates, RBAC authorization and the TokenRequest API (as controller-runtime's
 * envtest does). No controller-manager or scheduler runs: tests create what those would.
 *
 * The kube-apiserver binary is built by `make controlplane` into
 * `${STEVEDORE_CACHE:-~/.cache/stevedore}/bin/kube-apiserver-<version>`; etcd is the system one.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { request } from 'node:https';
import { ApiextensionsV1Api, CoreV1Api, KubeConfig, type V1CustomResourceDefinition } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { freePort, sleep } from './net.js';
import { killOnExit } from './procs.js';

const exec = promisify(execFile);
const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export interface ControlPlaneOptions {
  /** kube-apiserver binary; default `$KUBE_APISERVER` or the cached build for the pinned version. */
  kubeApiserver?: string;
  /** etcd binary; default `$ETCD` or `etcd` on PATH (/usr/bin/etcd). */
  etcd?: string;
  /** Extra kube-apiserver flags (`--feature-gates=...`). */
  extraApiserverArgs?: string[];
  /** Give up starting after this long (default 60 s). */
  startTimeoutMs?: number;
  /** Keep the working directory (certs, logs, etcd data) after stop(), for debugging. */
  keepDir?: boolean;
  /** Working directory to use (created if missing) instead of a fresh temp dir. */
  dir?: string;
  /** --authorization-mode (default ['RBAC']); the local node uses ['Node', 'RBAC']. */
  authorizationModes?: string[];
  /**
   * Admission plugins to enable and disable on top of the defaults. Default: ServiceAccount off
   * (without a controller-manager nobody creates the "default" ServiceAccount the plugin requires).
   */
  admission?: { enable?: string[]; disable?: string[] };
  /** More client certificates signed by the cluster CA, written as `<name>.crt`/`<name>.key` in `dir`. */
  clientCerts?: { name: string; subject: string }[];
}

export interface TokenOptions {
  audiences?: string[];
  expirationSeconds?: number;
}

export interface RawResponse {
  status: number;
  body: string;
  /** The body parsed as JSON (undefined when it is not JSON). */
  json: unknown;
}

export interface ControlPlane {
  /** https://127.0.0.1:<port> */
  server: string;
  /** A kubeconfig file for the admin user (group system:masters). */
  kubeconfigPath: string;
  /** The same kubeconfig, loaded. */
  kubeConfig: KubeConfig;
  /** Temporary directory with certs, logs (etcd.log, kube-apiserver.log) and etcd data. */
  dir: string;
  /** Apply every CRD in `dir` (*.yaml, multi-document allowed), default the repository's crds/, and wait until Established. */
  installCRDs(dir?: string): Promise<V1CustomResourceDefinition[]>;
  /** Create a namespace (ignores AlreadyExists). */
  createNamespace(name: string): Promise<void>;
  /**
   * A ServiceAccount token from the TokenRequest API; the ServiceAccount (and namespace) is
   * created when missing. No RBAC is granted: tests bind the roles they mean to test.
   */
  serviceAccountToken(namespace: string, name: string, opts?: TokenOptions): Promise<string>;
  /** A KubeConfig that authenticates with a bearer token (e.g. from serviceAccountToken). */
  kubeConfigForToken(token: string): KubeConfig;
  /** A raw HTTPS request as the admin user, e.g. for the Table API or a merge patch. */
  request(method: string, path: string, init?: { headers?: Record<string, string>; body?: string }): Promise<RawResponse>;
  /** Stop kube-apiserver and etcd and delete the working directory. Idempotent. */
  stop(): Promise<void>;
}

/** The k8s.io/kubernetes version pinned in hack/kube-apiserver/go.mod. */
export function pinnedKubeVersion(): string {
  const gomod = readFileSync(join(REPO_ROOT, 'hack', 'kube-apiserver', 'go.mod'), 'utf8');
  const m = /^\s*(?:require\s+)?k8s\.io\/kubernetes\s+(v\S+)/m.exec(gomod);
  if (!m) throw new Error('hack/kube-apiserver/go.mod pins no k8s.io/kubernetes version');
  return m[1]!;
}

export function cacheDir(): string {
  return process.env['STEVEDORE_CACHE'] || join(homedir(), '.cache', 'stevedore');
}

/** Path of the kube-apiserver binary the harness will use (it may not exist yet). */
export function kubeApiserverPath(): string {
  return process.env['KUBE_APISERVER'] || join(cacheDir(), 'bin', `kube-apiserver-${pinnedKubeVersion()}`);
}

/** Path of kubectl built by `make kubectl` (it may not exist). */
export function kubectlPath(): string {
  return process.env['KUBECTL'] || join(cacheDir(), 'bin', `kubectl-${pinnedKubeVersion()}`);
}

export { freePort } from './net.js';

async function openssl(dir: string, args: string[]): Promise<void> {
  await exec('openssl', args, { cwd: dir });
}

/** CA, serving cert (127.0.0.1, localhost), admin client cert (system:masters), service-account key pair. */
async function makeCerts(dir: string, clientCerts: { name: string; subject: string }[] = []): Promise<void> {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await openssl(dir, [
    'req',
    '-x509',
    ...ec,
    '-keyout',
    'ca.key',
    '-out',
    'ca.crt',
    '-days',
    '2',
    '-subj',
    '/CN=stevedore-test-ca',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
  ]);
  await writeFile(
    join(dir, 'serving.ext'),
    'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' +
      'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,IP:10.0.0.1\n',
  );
  await writeFile(join(dir, 'client.ext'), 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n');
  const sign = async (name: string, subj: string, ext: string) => {
    await openssl(dir, ['req', '-new', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subj]);
    await openssl(dir, [
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '2',
      '-out',
      `${name}.crt`,
      '-extfile',
      ext,
    ]);
  };
  await Promise.all([
    sign('serving', '/CN=kube-apiserver', 'serving.ext'),
    sign('admin', '/O=system:masters/CN=stevedore-admin', 'client.ext'),
    (async () => {
      await openssl(dir, ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-out', 'sa.key']);
      await openssl(dir, ['pkey', '-in', 'sa.key', '-pubout', '-out', 'sa.pub']);
    })(),
  ]);
  // One at a time: openssl updates the CA's serial file (ca.srl) on every signature.
  for (const c of clientCerts) await sign(c.name, c.subject, 'client.ext');
}

function b64(path: string): string {
  return readFileSync(path).toString('base64');
}

function kubeconfigYaml(server: string, dir: string): string {
  return JSON.stringify(
    {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'stevedore-test', cluster: { server, 'certificate-authority-data': b64(join(dir, 'ca.crt')) } }],
      users: [
        {
          name: 'stevedore-admin',
          user: { 'client-certificate-data': b64(join(dir, 'admin.crt')), 'client-key-data': b64(join(dir, 'admin.key')) },
        },
      ],
      contexts: [{ name: 'stevedore-test', context: { cluster: 'stevedore-test', user: 'stevedore-admin', namespace: 'default' } }],
      'current-context': 'stevedore-test',
    },
    null,
    2,
  );
}

function startProcess(bin: string, args: string[], logPath: string): ChildProcess {
  const log = createWriteStream(logPath);
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.pipe(log, { end: false });
  child.stderr!.pipe(log, { end: false });
  child.on('exit', () => log.end());
  return child;
}

async function stopProcess(child: ChildProcess | undefined, graceMs = 10_000): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

async function tail(path: string, lines = 40): Promise<string> {
  try {
    return (await readFile(path, 'utf8')).trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** An HTTPS request with the admin client certificate. */
function adminRequest(
  server: string,
  dir: string,
  method: string,
  path: string,
  init: { headers?: Record<string, string>; body?: string; timeoutMs?: number } = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request(
      new URL(path, server),
      {
        method,
        headers: init.headers,
        ca: readFileSync(join(dir, 'ca.crt')),
        cert: readFileSync(join(dir, 'admin.crt')),
        key: readFileSync(join(dir, 'admin.key')),
        timeout: init.timeoutMs ?? 10_000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => {
          let json: unknown;
          try {
            json = JSON.parse(body);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, body, json });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(init.body);
  });
}

function isConflict(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: number }).code === 409;
}

function admissionArgs(a: ControlPlaneOptions['admission']): string[] {
  // Without a controller-manager nobody creates the "default" ServiceAccount, so the
  // admission plugin that requires it would refuse every Pod.
  const { enable = [], disable = ['ServiceAccount'] } = a ?? {};
  return [
    ...(enable.length ? [`--enable-admission-plugins=${enable.join(',')}`] : []),
    ...(disable.length ? [`--disable-admission-plugins=${disable.join(',')}`] : []),
  ];
}

/** Start etcd and kube-apiserver on loopback and wait until /readyz is ok. */
export async function startControlPlane(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const apiserverBin = opts.kubeApiserver ?? kubeApiserverPath();
  if (!existsSync(apiserverBin)) {
    throw new Error(`kube-apiserver not found at ${apiserverBin}; build it with \`make controlplane\` (or set KUBE_APISERVER)`);
  }
  const etcdBin = opts.etcd ?? (process.env['ETCD'] || 'etcd');
  const deadline = Date.now() + (opts.startTimeoutMs ?? 60_000);
  const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  const dir = opts.dir ?? (await mkdtemp(join(base, 'stevedore-controlplane-')));
  if (opts.dir) await mkdir(opts.dir, { recursive: true });
  let etcd: ChildProcess | undefined;
  let apiserver: ChildProcess | undefined;
  let stopped = false;

  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await stopProcess(apiserver);
    await stopProcess(etcd);
    if (!opts.keepDir) await rm(dir, { recursive: true, force: true });
  };

  try {
    const [, clientPort, peerPort, securePort] = await Promise.all([makeCerts(dir, opts.clientCerts), freePort(), freePort(), freePort()]);
    const etcdUrl = `http://127.0.0.1:${clientPort}`;
    const peerUrl = `http://127.0.0.1:${peerPort}`;
    etcd = startProcess(
      etcdBin,
      [
        '--name=default',
        `--data-dir=${join(dir, 'etcd')}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=${peerUrl}`,
        `--initial-advertise-peer-urls=${peerUrl}`,
        `--initial-cluster=default=${peerUrl}`,
        '--initial-cluster-state=new',
        '--logger=zap',
        '--log-level=warn',
      ],
      join(dir, 'etcd.log'),
    );
    killOnExit(etcd);

    const server = `https://127.0.0.1:${securePort}`;
    apiserver = startProcess(
      apiserverBin,
      [
        '--advertise-address=127.0.0.1',
        '--bind-address=127.0.0.1',
        `--secure-port=${securePort}`,
        `--etcd-servers=${etcdUrl}`,
        `--cert-dir=${dir}`,
        `--tls-cert-file=${join(dir, 'serving.crt')}`,
        `--tls-private-key-file=${join(dir, 'serving.key')}`,
        `--client-ca-file=${join(dir, 'ca.crt')}`,
        `--authorization-mode=${(opts.authorizationModes ?? ['RBAC']).join(',')}`,
        `--service-account-issuer=${server}`,
        `--service-account-key-file=${join(dir, 'sa.pub')}`,
        `--service-account-signing-key-file=${join(dir, 'sa.key')}`,
        '--service-cluster-ip-range=10.0.0.0/24',
        ...admissionArgs(opts.admission),
        '--allow-privileged=true',
        '--enable-priority-and-fairness=false',
        '--profiling=false',
        '--endpoint-reconciler-type=none',
        '--v=1',
        ...(opts.extraApiserverArgs ?? []),
      ],
      join(dir, 'kube-apiserver.log'),
    );
    killOnExit(apiserver);

    // Wait for /readyz (every post-start hook, including RBAC bootstrap roles and CRD handling).
    let last = '';
    for (;;) {
      if (etcd.exitCode !== null) throw new Error(`etcd exited with ${etcd.exitCode}:\n${await tail(join(dir, 'etcd.log'))}`);
      if (apiserver.exitCode !== null) {
        throw new Error(`kube-apiserver exited with ${apiserver.exitCode}:\n${await tail(join(dir, 'kube-apiserver.log'))}`);
      }
      if (Date.now() > deadline) {
        throw new Error(`kube-apiserver not ready in time (last /readyz: ${last}):\n${await tail(join(dir, 'kube-apiserver.log'))}`);
      }
      try {
        const res = await adminRequest(server, dir, 'GET', '/readyz', { timeoutMs: 2000 });
        if (res.status === 200) break;
        last = `${res.status} ${res.body.slice(0, 500)}`;
      } catch (err) {
        last = (err as Error).message;
      }
      await sleep(150);
    }

    const kubeconfigPath = join(dir, 'kubeconfig');
    await writeFile(kubeconfigPath, kubeconfigYaml(server, dir), { mode: 0o600 });
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(kubeconfigPath);
    const core = kubeConfig.makeApiClient(CoreV1Api);

    const createNamespace = async (name: string) => {
      try {
        await core.createNamespace({ body: { metadata: { name } } });
      } catch (err) {
        if (!isConflict(err)) throw err;
      }
    };

    const rawRequest = (method: string, path: string, init?: { headers?: Record<string, string>; body?: string }) =>
      adminRequest(server, dir, method, path, init);

    const installCRDs = async (crdDir = join(REPO_ROOT, 'crds')) => {
      const ext = kubeConfig.makeApiClient(ApiextensionsV1Api);
      const names: string[] = [];
      for (const file of (await readdir(crdDir)).filter((f) => /\.ya?ml$/.test(f)).sort()) {
        for (const doc of parseAllDocuments(await readFile(join(crdDir, file), 'utf8'))) {
          const body = doc.toJS() as V1CustomResourceDefinition | null;
          if (!body || body.kind !== 'CustomResourceDefinition') continue;
          const name = body.metadata!.name!;
          // Server-side apply with the raw JSON: the typed client would serialise the body through
          // its models and silently drop keys such as x-kubernetes-validations.
          const res = await rawRequest('PATCH', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}?fieldManager=stevedore-test&force=true`, {
            headers: { 'content-type': 'application/apply-patch+yaml' },
            body: JSON.stringify(body),
          });
          if (res.status >= 300) {
            const msg = (res.json as { message?: string } | undefined)?.message ?? res.body;
            throw new Error(`applying CRD ${name} from ${file}: ${msg}`);
          }
          names.push(name);
        }
      }
      const established: V1CustomResourceDefinition[] = [];
      for (const name of names) {
        const until = Date.now() + 30_000;
        for (;;) {
          const crd = await ext.readCustomResourceDefinition({ name });
          const conds = crd.status?.conditions ?? [];
          if (conds.some((c) => c.type === 'Established' && c.status === 'True')) {
            established.push(crd);
            break;
          }
          if (Date.now() > until) throw new Error(`CRD ${name} not Established: ${JSON.stringify(conds)}`);
          await sleep(100);
        }
      }
      return established;
    };

    const serviceAccountToken = async (namespace: string, name: string, tokenOpts: TokenOptions = {}) => {
      await createNamespace(namespace);
      try {
        await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name } } });
      } catch (err) {
        if (!isConflict(err)) throw err;
      }
      const res = await core.createNamespacedServiceAccountToken({
        name,
        namespace,
        body: {
          spec: {
            audiences: tokenOpts.audiences ?? [server],
            expirationSeconds: tokenOpts.expirationSeconds ?? 3600,
          },
        },
      });
      const token = res.status?.token;
      if (!token) throw new Error(`TokenRequest for ${namespace}/${name} returned no token`);
      return token;
    };

    const kubeConfigForToken = (token: string) => {
      const kc = new KubeConfig();
      kc.loadFromOptions({
        clusters: [{ name: 'stevedore-test', server, caData: b64(join(dir, 'ca.crt')) }],
        users: [{ name: 'token', token }],
        contexts: [{ name: 'token', cluster: 'stevedore-test', user: 'token' }],
        currentContext: 'token',
      });
      return kc;
    };

    return {
      server,
      kubeconfigPath,
      kubeConfig,
      dir,
      installCRDs,
      createNamespace,
      serviceAccountToken,
      kubeConfigForToken,
      request: rawRequest,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
