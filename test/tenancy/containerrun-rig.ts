/**
 * The set-up the ContainerRun tenant-attack suites share: a real kube-apiserver with the CRDs, a
 * registry with basic auth holding a busybox image, the controller (in this process) and a real
 * node agent process (`stevedore agent`, root, runc) with the chart's agent RBAC, and tenants: a
 * namespace each with a ServiceAccount bound to a namespaced Role over ContainerRuns, Secrets and
 * ConfigMaps, as an administrator gives a team.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { copyReference } from '../../src/copy/copy.js';
import { createControllerManager } from '../../src/controllers/setup.js';
import { API_VERSION, GROUP, VERSION } from '../../src/k8s/api/common.js';
import type { ContainerRun } from '../../src/k8s/api/containerrun.js';
import { KubeClient } from '../../src/k8s/runtime/client.js';
import type { Manager } from '../../src/k8s/runtime/manager.js';
import { listContainers } from '../../src/runtime/containers.js';
import { ociRuntime } from '../../src/runtime/oci-runtime.js';
import { ImageStore } from '../../src/runtime/store/index.js';
import { parseImageName } from '../../src/transports/index.js';
import { rootLogger } from '../../src/util/log.js';
import { ensureBuilt, REPO_ROOT } from '../cli/stevedore.js';
import { startAgentProcess } from '../controllers/agent-process.js';
import { dockerConfigSecret, ok, waitFor } from '../controllers/helpers.js';
import { makeBusyboxImage } from '../../hack/lib/harness/images.js';
import { startControlPlane, type ControlPlane } from '../../hack/lib/harness/controlplane.js';
import type { ManagedProcess } from '../../hack/lib/harness/procs.js';
import { startRegistry, type TestRegistry } from '../../hack/lib/harness/registry.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';

export const SYSTEM_NS = 'stevedore-system';
export const NODE = 'node-t';

/** The helm that hack/helm.mk builds (as test/chart uses). */
export function helmPath(): string {
  if (process.env['HELM']) return process.env['HELM'];
  const version = /^HELM_VERSION\s*:?=\s*(v\S+)/m.exec(readFileSync(join(REPO_ROOT, 'hack', 'helm.mk'), 'utf8'))![1]!;
  return join(process.env['STEVEDORE_CACHE'] || join(homedir(), '.cache', 'stevedore'), 'bin', `helm-${version}`);
}

type ChartObject = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string } };

/** The chart rendered with the agent enabled, every object as JS. */
export async function renderChart(extraSet: string[] = []): Promise<ChartObject[]> {
  const { stdout } = await promisify(execFile)(
    helmPath(),
    [
      'template',
      'stevedore',
      join(REPO_ROOT, 'charts', 'stevedore'),
      '--namespace',
      SYSTEM_NS,
      '--set',
      'agent.enabled=true',
      ...extraSet.flatMap((s) => ['--set', s]),
    ],
    { maxBuffer: 16 * 1024 * 1024 },
  );
  return parseAllDocuments(stdout)
    .map((d) => d.toJS() as ChartObject | null)
    .filter((o): o is ChartObject => !!o);
}

const CLUSTER_PATHS: Record<string, string> = {
  ClusterRole: '/apis/rbac.authorization.k8s.io/v1/clusterroles',
  ClusterRoleBinding: '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings',
  ValidatingAdmissionPolicy: '/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies',
  ValidatingAdmissionPolicyBinding: '/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings',
};
const NAMESPACED_PATHS: Record<string, string> = {
  Role: 'apis/rbac.authorization.k8s.io/v1',
  RoleBinding: 'apis/rbac.authorization.k8s.io/v1',
  ServiceAccount: 'api/v1',
};

/** Creates one rendered object (cluster-scoped or namespaced, kinds above only). */
export async function applyObject(cp: ControlPlane, o: ChartObject): Promise<void> {
  if (CLUSTER_PATHS[o.kind]) return void (await ok(cp, 'POST', CLUSTER_PATHS[o.kind]!, o));
  const group = NAMESPACED_PATHS[o.kind];
  if (!group) throw new Error(`applyObject: unexpected kind ${o.kind}`);
  const ns = o.metadata.namespace ?? SYSTEM_NS;
  const plural = `${o.kind.toLowerCase()}s`;
  await ok(cp, 'POST', `/${group}/namespaces/${ns}/${plural}`, o).catch((e: Error) => {
    if (!/AlreadyExists|409/.test(e.message)) throw e;
  });
}

export interface Tenant {
  namespace: string;
  /** The tenant's own identity: a ServiceAccount bound to a namespaced Role. */
  client: KubeClient;
}

export interface RigOptions {
  /** Install the chart's ValidatingAdmissionPolicies (default true). */
  admission?: boolean;
  tenants: string[];
  /** Namespaces labelled privileged by the administrator. */
  privileged?: string[];
  extraAgentArgs?: string[];
  /** Start the agent in beforeAll (default true). */
  startAgent?: boolean;
}

export class ContainerRunRig {
  readonly temps = new TempDirs();
  cp!: ControlPlane;
  reg!: TestRegistry;
  /** `<registry>/tools/busybox:1`, readable only with the registry's credentials. */
  image!: string;
  imageDigest!: string;
  storeRoot!: string;
  agentLog!: string;
  agentKubeconfig!: string;
  agent?: ManagedProcess;
  readonly tenants = new Map<string, Tenant>();
  #manager?: Manager;
  #stop = new AbortController();
  #running?: Promise<void>;
  readonly o: RigOptions;

  constructor(o: RigOptions) {
    this.o = o;
  }

  async start(): Promise<void> {
    const built = ensureBuilt();
    [this.cp, this.reg] = await Promise.all([startControlPlane(), startRegistry({ name: 'tenancy', auth: 'basic' })]);
    const cp = this.cp;
    await cp.installCRDs();
    await cp.createNamespace(SYSTEM_NS);
    const fixture = await makeBusyboxImage(await this.temps.make('busybox'), 'latest');
    this.image = `${this.reg.host}/tools/busybox:1`;
    await copyReference(parseImageName(fixture.ociRef), parseImageName(`docker://${this.image}`), {
      destContext: { credentials: { username: this.reg.username!, password: this.reg.password! } },
    });
    this.imageDigest = fixture.descriptor.digest;
    for (const ns of this.o.tenants) await this.addTenant(ns, (this.o.privileged ?? []).includes(ns));
    // The tenants' namespaces opt in to the agents reading their Secrets and ConfigMaps.
    const chart = await renderChart([`agent.secretNamespaces={${this.o.tenants.join(',')}}`]);
    // The agent's identity exactly as the chart makes it (ServiceAccount, roles, bindings).
    for (const o of chart.filter(
      (x) => x.metadata.name.includes('-agent') && !x.kind.startsWith('ValidatingAdmissionPolicy') && (x.kind in CLUSTER_PATHS || x.kind in NAMESPACED_PATHS),
    ))
      await applyObject(cp, o);
    if (this.o.admission !== false) {
      for (const o of chart.filter((x) => x.kind.startsWith('ValidatingAdmissionPolicy'))) await applyObject(cp, o);
      await this.#policyEnforced();
    }
    this.storeRoot = await this.temps.make('agent-store');
    const dir = await this.temps.make('agent-log');
    this.agentLog = join(dir, 'agent.log');
    this.agentKubeconfig = join(dir, 'agent.kubeconfig');
    await writeFile(this.agentKubeconfig, cp.kubeConfigForToken(await this.nodeBoundAgentToken(NODE)).exportConfig());
    this.#manager = createControllerManager({
      kubeConfig: cp.kubeConfig,
      leaderElection: { namespace: SYSTEM_NS, name: 'tenancy-test' },
      containerRun: { nodeCheckMs: 300, failoverAfterMs: 60_000, unschedulableRetryMs: 500 },
      queue: { backoff: { baseMs: 200, maxMs: 2_000, jitter: 0.1 } },
      processMetrics: false,
      log: rootLogger.child({ test: 'tenancy' }, { level: 'error' }),
    });
    this.#running = this.#manager.run(this.#stop.signal);
    await built;
    if (this.o.startAgent !== false) await this.startAgent();
  }

  /**
   * The API server loads admission policies through an informer, so a policy is enforced a moment
   * after it is created (seconds on a loaded machine): wait until a dry-run of a run asking for the
   * host network is refused in a namespace without the privilege label.
   */
  async #policyEnforced(): Promise<void> {
    const ns = this.o.tenants.find((t) => !(this.o.privileged ?? []).includes(t));
    if (!ns) return;
    const body = { apiVersion: API_VERSION, kind: 'ContainerRun', metadata: { name: 'policy-probe' }, spec: { image: 'example.com/probe:1', network: 'host' } };
    await waitFor(
      'the ContainerRun admission policy to be enforced',
      async () =>
        (await this.cp.request('POST', `${runsPath(ns)}?dryRun=All`, { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })).status,
      (status) => status === 403,
      60_000,
    );
  }

  /**
   * The agent ServiceAccount's token as a DaemonSet Pod on `node` gets it: bound to a Pod that is
   * bound to the Node, so it carries the node's name (user extra authentication.kubernetes.io/node-name).
   */
  async nodeBoundAgentToken(node: string): Promise<string> {
    const cp = this.cp;
    await ok(cp, 'POST', '/api/v1/nodes', { apiVersion: 'v1', kind: 'Node', metadata: { name: node } }).catch((e: Error) => {
      if (!/AlreadyExists|409/.test(e.message)) throw e;
    });
    const pod = (await ok(cp, 'POST', `/api/v1/namespaces/${SYSTEM_NS}/pods`, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { generateName: `stevedore-agent-${node}-` },
      spec: { nodeName: node, serviceAccountName: 'stevedore-agent', containers: [{ name: 'agent', image: 'stevedore:test' }] },
    })) as { metadata: { name: string; uid: string } };
    const res = (await ok(cp, 'POST', `/api/v1/namespaces/${SYSTEM_NS}/serviceaccounts/stevedore-agent/token`, {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: {
        audiences: [cp.server],
        expirationSeconds: 3600,
        boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: pod.metadata.name, uid: pod.metadata.uid },
      },
    })) as { status: { token: string } };
    return res.status.token;
  }

  /** A namespace with a Secret for the registry and a tenant bound to a namespaced Role. */
  async addTenant(ns: string, privileged = false): Promise<Tenant> {
    const cp = this.cp;
    await cp.createNamespace(ns);
    if (privileged) {
      await ok(
        cp,
        'PATCH',
        `/api/v1/namespaces/${ns}`,
        { metadata: { labels: { 'stevedore.dev/containerrun-privileges': 'privileged' } } },
        'application/merge-patch+json',
      );
    }
    await ok(cp, 'POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles`, {
      metadata: { name: 'team' },
      rules: [
        { apiGroups: [GROUP], resources: ['containerruns'], verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'] },
        { apiGroups: [''], resources: ['secrets', 'configmaps'], verbs: ['get', 'list', 'create', 'update', 'delete'] },
      ],
    });
    await ok(cp, 'POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`, {
      metadata: { name: 'team' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'team' },
      subjects: [{ kind: 'ServiceAccount', name: 'team', namespace: ns }],
    });
    const client = new KubeClient(cp.kubeConfigForToken(await cp.serviceAccountToken(ns, 'team')));
    const tenant = { namespace: ns, client };
    this.tenants.set(ns, tenant);
    return tenant;
  }

  /** The registry's credentials as a dockerconfigjson Secret in the tenant's namespace (created by the tenant). */
  async pullSecret(ns: string, name = 'pull'): Promise<void> {
    await this.tenant(ns).client.create(`/api/v1/namespaces/${ns}/secrets`, dockerConfigSecret(name, this.reg.host, this.reg.username!, this.reg.password!));
  }

  tenant(ns: string): Tenant {
    const t = this.tenants.get(ns);
    if (!t) throw new Error(`no tenant ${ns}`);
    return t;
  }

  async startAgent(extraArgs: string[] = []): Promise<void> {
    this.agent = await startAgentProcess({
      nodeName: NODE,
      kubeconfig: this.agentKubeconfig,
      leaseNamespace: SYSTEM_NS,
      root: this.storeRoot,
      log: this.agentLog,
      extraArgs: ['--stop-grace-period', '1s', ...(this.o.extraAgentArgs ?? []), ...extraArgs],
    });
    // Live once its heartbeat Lease is renewed (the controller binds nothing to a node without one).
    const since = Date.now();
    await waitFor(
      'the agent heartbeat',
      async () => {
        const res = await this.cp.request('GET', `/apis/coordination.k8s.io/v1/namespaces/${SYSTEM_NS}/leases/stevedore-agent-${NODE}`);
        return res.status === 200 ? Date.parse((res.json as { spec: { renewTime: string } }).spec.renewTime) : 0;
      },
      (t) => t >= since - 1000,
      30_000,
    );
    await new Promise((r) => setTimeout(r, 500)); // and the controller's lease informer has seen it
  }

  /** Creates a run as the tenant (pinned to the rig's node unless the spec says otherwise). */
  createRun(ns: string, name: string, spec: Partial<ContainerRun['spec']>): Promise<ContainerRun> {
    return this.tenant(ns).client.create<ContainerRun>(runsPath(ns), {
      apiVersion: API_VERSION,
      kind: 'ContainerRun',
      metadata: { name },
      spec: { image: this.image, nodeName: NODE, ...spec },
    });
  }

  async getRun(ns: string, name: string): Promise<ContainerRun | undefined> {
    const res = await this.cp.request('GET', runsPath(ns, name));
    if (res.status === 404) return undefined;
    if (res.status >= 300) throw new Error(`GET ${ns}/${name}: ${res.status} ${res.body}`);
    return res.json as ContainerRun;
  }

  async waitPhase(ns: string, name: string, phases: string[], timeoutMs = 30_000): Promise<ContainerRun> {
    try {
      return (await waitFor(
        `${ns}/${name} in ${phases.join('|')}`,
        () => this.getRun(ns, name),
        (r) => phases.includes(r?.status?.phase ?? ''),
        timeoutMs,
      ))!;
    } catch (err) {
      console.log(await this.agentLogTail());
      throw err;
    }
  }

  async agentLogTail(lines = 40): Promise<string> {
    return (await readFile(this.agentLog, 'utf8').catch(() => '')).split('\n').slice(-lines).join('\n');
  }

  async stop(): Promise<void> {
    await this.agent?.stop();
    this.#stop.abort();
    await this.#running;
    // Nothing a suite started may outlive it: kill containers still running in the store.
    if (this.storeRoot) {
      const store = await ImageStore.open(this.storeRoot);
      for (const c of await listContainers(store)) {
        if (c.status === 'running')
          await ociRuntime(c.runtime, c.stateRoot ? { stateRoot: c.stateRoot } : {})
            .kill(c.id, 'SIGKILL', { all: true })
            .catch(() => undefined);
      }
    }
    await Promise.all([this.cp?.stop(), this.reg?.stop()]);
    await this.temps.cleanup();
  }
}

export const runsPath = (ns: string, name?: string) => `/apis/${GROUP}/${VERSION}/namespaces/${ns}/containerruns${name ? `/${name}` : ''}`;
