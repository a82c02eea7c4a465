// The Helm chart (charts/stevedore): lint, render, and check that what it installs matches what the
// project proves elsewhere: the RBAC equals config/rbac/*.yaml (which the controller integration
// tests show is sufficient), the CRDs equal crds/, the pod meets the "restricted" Pod
// Security Standard, and values.schema.json refuses bad values. The rendered RBAC is then applied to a
// real API server and checked with SelfSubjectAccessReviews made with the chart ServiceAccount's token.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { AuthorizationV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { startControlPlane, type ControlPlane } from '../../hack/lib/harness/controlplane.js';

const exec = promisify(execFile);
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CHART = join(ROOT, 'charts', 'stevedore');
const RELEASE = 'stevedore';
const NAMESPACE = 'stevedore-system';

/** The helm version hack/helm.mk pins. */
function pinnedHelmVersion(): string {
  const mk = readFileSync(join(ROOT, 'hack', 'helm.mk'), 'utf8');
  const m = /^HELM_VERSION\s*:?=\s*(v\S+)/m.exec(mk);
  if (!m) throw new Error('hack/helm.mk pins no HELM_VERSION');
  return m[1]!;
}

function helmPath(): string {
  if (process.env['HELM']) return process.env['HELM'];
  const cache = process.env['STEVEDORE_CACHE'] || join(homedir(), '.cache', 'stevedore');
  return join(cache, 'bin', `helm-${pinnedHelmVersion()}`);
}

const HELM = helmPath();
// Helm keeps its config, cache and plugins under these; keep the tests away from the user's.
const helmHome = mkdtempSync(join(tmpdir(), 'stevedore-helm-'));
const helmEnv = {
  ...process.env,
  HELM_CONFIG_HOME: join(helmHome, 'config'),
  HELM_CACHE_HOME: join(helmHome, 'cache'),
  HELM_DATA_HOME: join(helmHome, 'data'),
};

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function helm(...args: string[]): Promise<Run> {
  try {
    const { stdout, stderr } = await exec(HELM, args, { env: helmEnv, maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number | string; stdout?: string; stderr?: string; message: string };
    if (typeof e.code !== 'number') throw err;
    return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? e.message };
  }
}

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [key: string]: unknown;
}

async function render(...extra: string[]): Promise<K8sObject[]> {
  const res = await helm('template', RELEASE, CHART, '--namespace', NAMESPACE, ...extra);
  if (res.code !== 0) throw new Error(`helm template failed (${res.code}):\n${res.stderr}`);
  return parseAllDocuments(res.stdout)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
}

function named(objs: K8sObject[], kind: string, name: string): K8sObject {
  const found = objs.filter((o) => o.kind === kind && o.metadata.name === name);
  expect(found, `${kind} ${name}`).toHaveLength(1);
  return found[0]!;
}

function one(objs: K8sObject[], kind: string): K8sObject {
  const found = objs.filter((o) => o.kind === kind);
  expect(
    found.map((o) => o.metadata.name),
    `exactly one ${kind}`,
  ).toHaveLength(1);
  return found[0]!;
}

interface PolicyRule {
  apiGroups?: string[];
  resources?: string[];
  verbs: string[];
}
interface PodSpec {
  serviceAccountName: string;
  securityContext: Record<string, unknown>;
  containers: Array<{
    name: string;
    image: string;
    args: string[];
    env: Array<{ name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }>;
    ports: Array<{ name: string; containerPort: number }>;
    livenessProbe: { httpGet: { path: string; port: string | number } };
    readinessProbe: { httpGet: { path: string; port: string | number } };
    securityContext: Record<string, unknown>;
  }>;
}
interface Deployment extends K8sObject {
  spec: { replicas: number; template: { spec: PodSpec } };
}

beforeAll(() => {
  if (!existsSync(HELM)) {
    throw new Error(`helm not found at ${HELM}; build it with \`make helm\` (hack/helm.mk) or set HELM to a helm binary`);
  }
});

afterAll(() => rmSync(helmHome, { recursive: true, force: true }));

describe('charts/stevedore', () => {
  it('passes helm lint --strict', async () => {
    const res = await helm('lint', '--strict', CHART, '--namespace', NAMESPACE);
    expect(res.code, `${res.stdout}\n${res.stderr}`).toBe(0);
    expect(res.stdout).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
  });

  it('renders a ServiceAccount, RBAC, the controller Deployment and a metrics Service', async () => {
    const objs = await render();
    expect(objs.map((o) => o.kind).sort()).toEqual(
      [
        'ClusterRole',
        'ClusterRole',
        'ClusterRole',
        'ClusterRoleBinding',
        'ConfigMap',
        'DaemonSet',
        'Deployment',
        'Role',
        'RoleBinding',
        'Service',
        'ServiceAccount',
      ].sort(),
    );
    for (const o of objs.filter((o) => !o.kind.startsWith('Cluster'))) expect(o.metadata.namespace).toBe(NAMESPACE);
    const sa = one(objs, 'ServiceAccount');
    const binding = one(objs, 'ClusterRoleBinding') as K8sObject & {
      roleRef: { kind: string; name: string };
      subjects: Array<{ kind: string; name: string; namespace: string }>;
    };
    expect(binding.roleRef).toMatchObject({ kind: 'ClusterRole', name: named(objs, 'ClusterRole', `${RELEASE}-controller`).metadata.name });
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: sa.metadata.name, namespace: NAMESPACE }]);
    const svc = one(objs, 'Service') as K8sObject & { spec: { selector: Record<string, string>; ports: Array<{ targetPort: string }> } };
    const deploy = one(objs, 'Deployment') as Deployment;
    const podLabels = (deploy.spec.template as unknown as { metadata: { labels: Record<string, string> } }).metadata.labels;
    expect(podLabels).toMatchObject(svc.spec.selector);
    expect(svc.spec.ports[0]!.targetPort).toBe('metrics');
  });

  it("installs the build Pods' seccomp profile with no capability, only under the kubelet's seccomp dir", async () => {
    const objs = await render('--set', 'buildSeccompProfile.kubeletRootDir=/var/lib/k0s/kubelet/');
    const cm = objs.find((o) => o.kind === 'ConfigMap' && o.metadata.name.endsWith('-build-seccomp')) as K8sObject & { data: Record<string, string> };
    expect(JSON.parse(cm.data['profile.json']!)).toEqual(JSON.parse(readFileSync(join(CHART, 'files', 'seccomp-builder.json'), 'utf8')));
    const ds = objs.find((o) => o.kind === 'DaemonSet' && o.metadata.name.endsWith('-build-seccomp')) as unknown as {
      spec: {
        template: {
          spec: {
            hostNetwork: boolean;
            automountServiceAccountToken: boolean;
            containers: { command: string[]; securityContext: Record<string, unknown>; volumeMounts: { mountPath: string }[] }[];
            volumes: { name: string; hostPath?: { path: string } }[];
          };
        };
      };
    };
    const pod = ds.spec.template.spec;
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.volumes.filter((v) => v.hostPath).map((v) => v.hostPath!.path)).toEqual(['/var/lib/k0s/kubelet/seccomp/stevedore']);
    expect(pod.containers[0]!.securityContext).toEqual({
      runAsUser: 0,
      runAsNonRoot: false,
      allowPrivilegeEscalation: false,
      privileged: false,
      capabilities: { drop: ['ALL'] },
      readOnlyRootFilesystem: true,
    });
    // It writes the file the build Pods name (localhost/stevedore/builder.json), nothing else.
    expect(pod.containers[0]!.command.join('\n')).toContain("dst = '/host/builder.json'");
    const off = await render('--set', 'buildSeccompProfile.install=false', '--set', 'buildPods.seccompProfile=RuntimeDefault');
    expect(off.some((o) => o.metadata.name.endsWith('-build-seccomp'))).toBe(false);
    const bad = await helm('template', RELEASE, CHART, '--namespace', NAMESPACE, '--set', 'buildPods.seccompProfile=RuntimeDefault');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('buildSeccompProfile.install=true installs the profile build Pods name in buildPods.seccompProfile');
  });

  it('renders the CRDs with --include-crds, byte for byte the repository crds/ (run `make chart-crds` when this fails)', async () => {
    const repo = readdirSync(join(ROOT, 'crds'))
      .filter((f) => f.endsWith('.yaml'))
      .sort();
    const chart = readdirSync(join(CHART, 'crds'))
      .filter((f) => f.endsWith('.yaml'))
      .sort();
    expect(chart).toEqual(repo);
    for (const f of repo) {
      expect(readFileSync(join(CHART, 'crds', f), 'utf8'), f).toBe(readFileSync(join(ROOT, 'crds', f), 'utf8'));
    }
    const crds = (await render('--include-crds')).filter((o) => o.kind === 'CustomResourceDefinition');
    expect(crds.map((c) => c.metadata.name).sort()).toEqual(['containerruns.stevedore.dev', 'imagebuilds.stevedore.dev', 'imagemirrors.stevedore.dev']);
  });

  it('grants exactly the rules of config/rbac/*.yaml', async () => {
    const rules = (file: string) => (parseYaml(readFileSync(join(ROOT, 'config', 'rbac', file), 'utf8')) as { rules: PolicyRule[] }).rules;
    const objs = await render();
    const chartRules = (kind: string, name: string) => (named(objs, kind, name) as K8sObject & { rules: PolicyRule[] }).rules;
    expect(chartRules('ClusterRole', `${RELEASE}-controller`)).toEqual(rules('role.yaml'));
    expect(chartRules('ClusterRole', `${RELEASE}-tenant`)).toEqual(rules('tenant-role.yaml'));
    expect(chartRules('Role', `${RELEASE}-leader-election`)).toEqual(rules('leader-election-role.yaml'));
  });

  it('binds the tenant role in each of tenantNamespaces only, or cluster-wide with tenantAllNamespaces', async () => {
    const objs = await render('--set', 'tenantNamespaces={team-a,team-b}');
    const bindings = objs.filter((o) => o.kind === 'RoleBinding' && o.metadata.name === `${RELEASE}-tenant`) as Array<
      K8sObject & { roleRef: { kind: string; name: string } }
    >;
    expect(bindings.map((b) => b.metadata.namespace)).toEqual(['team-a', 'team-b']);
    for (const b of bindings) expect(b.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: `${RELEASE}-tenant` });
    expect(objs.filter((o) => o.kind === 'ClusterRoleBinding').map((o) => o.metadata.name)).toEqual([`${RELEASE}-controller`]);
    // A single-namespace controller serves its watched namespace without listing it twice.
    const watched = await render('--set', 'controller.watchNamespace=team-a', '--set', 'tenantNamespaces={team-a,team-c}');
    expect(watched.filter((o) => o.kind === 'RoleBinding' && o.metadata.name === `${RELEASE}-tenant`).map((o) => o.metadata.namespace)).toEqual([
      'team-a',
      'team-c',
    ]);
    const watchedOnly = await render('--set', 'controller.watchNamespace=team-w');
    expect(watchedOnly.filter((o) => o.kind === 'RoleBinding' && o.metadata.name === `${RELEASE}-tenant`).map((o) => o.metadata.namespace)).toEqual(['team-w']);
    const all = await render('--set', 'tenantAllNamespaces=true', '--set', 'tenantNamespaces={team-a}');
    expect(
      all
        .filter((o) => o.kind === 'ClusterRoleBinding')
        .map((o) => o.metadata.name)
        .sort(),
    ).toEqual([`${RELEASE}-controller`, `${RELEASE}-tenant`]);
    expect(all.filter((o) => o.kind === 'RoleBinding').map((o) => o.metadata.name)).toEqual([`${RELEASE}-leader-election`]);
  });

  it('passes buildPods.allowedSchedulingKeys to the controller', async () => {
    const c = (one(await render('--set', 'buildPods.allowedSchedulingKeys={pool.example.com/builds,kubernetes.io/arch}'), 'Deployment') as Deployment).spec
      .template.spec.containers[0]!;
    expect(c.args).toContain('--build-pod-allowed-scheduling-keys=pool.example.com/builds,kubernetes.io/arch');
    const none = (one(await render(), 'Deployment') as Deployment).spec.template.spec.containers[0]!;
    expect(none.args.some((a) => a.startsWith('--build-pod-allowed-scheduling-keys'))).toBe(false);
  });

  it('passes buildPods.cacheRepository and minBaseImagePollInterval to the controller, and refuses a bad interval', async () => {
    const c = (
      one(
        await render('--set', 'buildPods.cacheRepository=cache.example.com/builds/{namespace}/{name}', '--set', 'buildPods.minBaseImagePollInterval=30s'),
        'Deployment',
      ) as Deployment
    ).spec.template.spec.containers[0]!;
    expect(c.args).toContain('--build-cache-repository=cache.example.com/builds/{namespace}/{name}');
    expect(c.args).toContain('--min-base-image-poll=30s');
    const defaults = (one(await render(), 'Deployment') as Deployment).spec.template.spec.containers[0]!;
    expect(defaults.args.some((a) => a.startsWith('--build-cache-repository'))).toBe(false);
    expect(defaults.args).toContain('--min-base-image-poll=1m');
    const bad = await helm('template', RELEASE, CHART, '--set', 'buildPods.minBaseImagePollInterval=often');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('minBaseImagePollInterval');
    const badRepo = await helm('template', RELEASE, CHART, '--set', 'buildPods.cacheRepository=Cache Repo');
    expect(badRepo.code).not.toBe(0);
    expect(badRepo.stderr).toContain('cacheRepository');
  });

  it('renders buildPods.sourcePolicy into a ConfigMap the controller reads with --build-source-policy', async () => {
    const policy = { rules: [{ action: 'DENY', selector: { identifier: 'docker-image://docker.io/*', matchType: 'WILDCARD' } }] };
    const values = join(tmpdir(), `stevedore-chart-source-policy-${process.pid}.yaml`);
    writeFileSync(values, `buildPods:\n  sourcePolicy: ${JSON.stringify(policy)}\n`);
    try {
      const objs = await render('--values', values);
      const cm = objs.find((o) => o.kind === 'ConfigMap' && o.metadata.name === `${RELEASE}-source-policy`) as K8sObject & { data: Record<string, string> };
      expect(cm, 'the source-policy ConfigMap').toBeDefined();
      expect(JSON.parse(cm.data['policy.json']!)).toEqual(policy);
      const pod = (one(objs, 'Deployment') as Deployment).spec.template.spec as PodSpec & {
        volumes: Array<{ name: string; configMap?: { name: string } }>;
        containers: Array<{ volumeMounts: Array<{ name: string; mountPath: string; readOnly?: boolean }> }>;
      };
      expect(pod.containers[0]!.args).toContain('--build-source-policy=/etc/stevedore/source-policy/policy.json');
      expect(pod.volumes.find((v) => v.name === 'source-policy')!.configMap).toEqual({ name: `${RELEASE}-source-policy` });
      expect(pod.containers[0]!.volumeMounts).toContainEqual({ name: 'source-policy', mountPath: '/etc/stevedore/source-policy', readOnly: true });
    } finally {
      rmSync(values, { force: true });
    }
    const none = await render();
    expect(none.filter((o) => o.kind === 'ConfigMap' && o.metadata.name.endsWith('-source-policy'))).toEqual([]);
    expect((one(none, 'Deployment') as Deployment).spec.template.spec.containers[0]!.args.some((a) => a.startsWith('--build-source-policy'))).toBe(false);
  });

  it('runs the controller with leader election, two replicas, probes and POD_NAMESPACE', async () => {
    const deploy = one(await render(), 'Deployment') as Deployment;
    expect(deploy.spec.replicas).toBe(2);
    const pod = deploy.spec.template.spec;
    expect(pod.serviceAccountName).toBe(`${RELEASE}`);
    const c = pod.containers[0]!;
    const chart = parseYaml(readFileSync(join(CHART, 'Chart.yaml'), 'utf8')) as { appVersion: string };
    expect(c.image).toBe(`ghcr.io/stevedore-dev/stevedore:${chart.appVersion}`);
    expect(c.args[0]).toBe('controller');
    expect(c.args).toContain('--leader-elect');
    expect(c.args).toContain('--metrics-addr=:8080');
    expect(c.args).toContain('--metrics-auth=true');
    expect(c.args).toContain('--leader-election-namespace=$(POD_NAMESPACE)');
    // ImageBuild Pods run the controller's own image, in their own user namespace, as uid 65532.
    expect(c.args).toEqual(
      expect.arrayContaining([
        `--build-image=${c.image}`,
        '--build-user-namespaces=true',
        '--build-run-as-user=65532',
        '--build-seccomp-profile=localhost/stevedore/builder.json',
      ]),
    );
    expect(c.env.find((e) => e.name === 'POD_NAMESPACE')?.valueFrom?.fieldRef?.fieldPath).toBe('metadata.namespace');
    expect(c.ports).toEqual([{ name: 'metrics', containerPort: 8080, protocol: 'TCP' }]);
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'metrics' });
  });

  it('meets the restricted Pod Security Standard', async () => {
    const pod = (one(await render(), 'Deployment') as Deployment).spec.template.spec;
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    expect(pod.securityContext['runAsUser']).not.toBe(0);
    for (const c of pod.containers) {
      expect(c.securityContext, c.name).toMatchObject({
        runAsNonRoot: true,
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
        capabilities: { drop: ['ALL'] },
        seccompProfile: { type: 'RuntimeDefault' },
      });
      expect((c.securityContext['capabilities'] as { add?: string[] }).add ?? []).toEqual([]);
      expect(c.securityContext['privileged'] ?? false).toBe(false);
    }
    expect(JSON.stringify(pod)).not.toMatch(/hostPath|hostNetwork|hostPID|hostIPC/);
  });

  it('follows values: image digest, watch namespace, single replica without leader election', async () => {
    const digest = `sha256:${'a'.repeat(64)}`;
    const pod = (one(await render('--set', `image.digest=${digest}`, '--set', 'controller.watchNamespace=team-a'), 'Deployment') as Deployment).spec.template
      .spec;
    expect(pod.containers[0]!.image).toBe(`ghcr.io/stevedore-dev/stevedore@${digest}`);
    expect(pod.containers[0]!.args).toContain('--namespace=team-a');
    const single = one(await render('--set', 'replicas=1', '--set', 'controller.leaderElect=false'), 'Deployment') as Deployment;
    expect(single.spec.template.spec.containers[0]!.args).not.toContain('--leader-elect');
    const none = await render('--set', 'rbac.create=false', '--set', 'serviceAccount.create=false', '--set', 'serviceAccount.name=existing');
    expect(none.map((o) => o.kind).sort()).toEqual(['ConfigMap', 'DaemonSet', 'Deployment', 'Service']);
  });

  it.each([
    [['--set', 'replicas=-1'], /replicas.*minimum|minimum.*0/is],
    [['--set-string', 'replicas=two'], /replicas.*(integer|type)/is],
    [['--set', 'image.pullPolicy=Sometimes'], /pullPolicy/],
    [['--set', 'controller.workers=0'], /workers/],
    [['--set', 'replicaCount=3'], /replicaCount|additional propert/i],
    [['--set', 'image.digest=latest'], /digest/],
  ])('values.schema.json refuses %j', async (args, message) => {
    const res = await helm('template', RELEASE, CHART, '--namespace', NAMESPACE, ...args);
    expect(res.code, res.stdout).not.toBe(0);
    expect(res.stderr).toMatch(/values don't meet the specifications of the schema|schema/i);
    expect(res.stderr).toMatch(message);
  });

  it('refuses several replicas without leader election', async () => {
    const res = await helm('template', RELEASE, CHART, '--namespace', NAMESPACE, '--set', 'controller.leaderElect=false');
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/replicas > 1 needs controller.leaderElect=true/);
  });
});

describe('the chart RBAC on a real API server', () => {
  let cp: ControlPlane;
  let authz: AuthorizationV1Api;

  beforeAll(async () => {
    cp = await startControlPlane();
    await cp.installCRDs(join(CHART, 'crds'));
    await cp.createNamespace(NAMESPACE);
    await cp.createNamespace('team-a');
    const paths: Record<string, (ns: string) => string> = {
      ServiceAccount: (ns) => `/api/v1/namespaces/${ns}/serviceaccounts`,
      ClusterRole: () => '/apis/rbac.authorization.k8s.io/v1/clusterroles',
      ClusterRoleBinding: () => '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings',
      Role: (ns) => `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles`,
      RoleBinding: (ns) => `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`,
    };
    const objs = await render('--set', 'tenantNamespaces={team-a}');
    for (const o of objs.filter((o) => o.kind in paths)) {
      const res = await cp.request('POST', paths[o.kind]!(o.metadata.namespace ?? ''), {
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(o),
      });
      if (res.status >= 300) throw new Error(`create ${o.kind} ${o.metadata.name}: ${res.status} ${res.body}`);
    }
    const sa = one(objs, 'ServiceAccount').metadata.name;
    const token = await cp.serviceAccountToken(NAMESPACE, sa);
    authz = cp.kubeConfigForToken(token).makeApiClient(AuthorizationV1Api);
  });

  afterAll(async () => {
    await cp?.stop();
  });

  async function can(verb: string, resource: string, opts: { group?: string; namespace?: string; subresource?: string } = {}) {
    const res = await authz.createSelfSubjectAccessReview({
      body: {
        spec: {
          resourceAttributes: {
            verb,
            resource,
            group: opts.group ?? '',
            namespace: opts.namespace,
            subresource: opts.subresource,
          },
        },
      },
    });
    return res.status?.allowed === true;
  }

  it('lets the chart ServiceAccount do what the controller does', async () => {
    const g = { group: 'stevedore.dev' };
    for (const verb of ['get', 'list', 'watch', 'update', 'patch']) expect(await can(verb, 'imagemirrors', g), verb).toBe(true);
    expect(await can('list', 'imagemirrors', { ...g, namespace: 'team-a' })).toBe(true);
    expect(await can('patch', 'imagemirrors', { ...g, namespace: 'team-a', subresource: 'status' })).toBe(true);
    expect(await can('update', 'imagemirrors', { ...g, namespace: 'team-a', subresource: 'finalizers' })).toBe(true);
    expect(await can('get', 'secrets', { namespace: 'team-a' })).toBe(true);
    for (const verb of ['get', 'list', 'watch', 'update', 'patch']) expect(await can(verb, 'imagebuilds', g), verb).toBe(true);
    expect(await can('patch', 'imagebuilds', { ...g, namespace: 'team-a', subresource: 'status' })).toBe(true);
    for (const verb of ['get', 'list', 'watch', 'create', 'delete']) expect(await can(verb, 'pods', { namespace: 'team-a' }), verb).toBe(true);
    expect(await can('create', 'events', { group: 'events.k8s.io', namespace: 'team-a' })).toBe(true);
    for (const verb of ['get', 'list', 'create', 'update']) {
      expect(await can(verb, 'leases', { group: 'coordination.k8s.io', namespace: NAMESPACE }), verb).toBe(true);
    }
  });

  it('grants nothing more', async () => {
    expect(await can('list', 'secrets', { namespace: 'team-a' })).toBe(false);
    expect(await can('watch', 'secrets')).toBe(false);
    expect(await can('create', 'secrets', { namespace: 'team-a' })).toBe(false);
    expect(await can('delete', 'imagemirrors', { group: 'stevedore.dev', namespace: 'team-a' })).toBe(false);
    expect(await can('create', 'imagemirrors', { group: 'stevedore.dev', namespace: 'team-a' })).toBe(false);
    expect(await can('create', 'imagebuilds', { group: 'stevedore.dev', namespace: 'team-a' })).toBe(false);
    expect(await can('delete', 'imagebuilds', { group: 'stevedore.dev', namespace: 'team-a' })).toBe(false);
    // Build Pods are created and deleted, never changed, and nothing runs inside them (no exec).
    expect(await can('update', 'pods', { namespace: 'team-a' })).toBe(false);
    expect(await can('patch', 'pods', { namespace: 'team-a', subresource: 'status' })).toBe(false);
    expect(await can('create', 'pods', { namespace: 'team-a', subresource: 'exec' })).toBe(false);
    expect(await can('delete', 'leases', { group: 'coordination.k8s.io', namespace: NAMESPACE })).toBe(false);
    // Outside the opted-in tenant namespace (team-a) and the release namespace: nothing but the informers' list/watch.
    expect(await can('get', 'secrets', { namespace: 'team-b' })).toBe(false);
    expect(await can('get', 'secrets', { namespace: 'kube-system' })).toBe(false);
    expect(await can('create', 'pods', { namespace: 'kube-system' })).toBe(false);
    expect(await can('create', 'pods', { namespace: 'team-b' })).toBe(false);
    expect(await can('create', 'events', { group: 'events.k8s.io', namespace: 'team-b' })).toBe(false);
    expect(await can('update', 'leases', { group: 'coordination.k8s.io', namespace: 'kube-system' })).toBe(false);
    expect(await can('create', 'leases', { group: 'coordination.k8s.io', namespace: 'team-a' })).toBe(false);
    expect(await can('get', 'configmaps', { namespace: NAMESPACE })).toBe(false);
    expect(await can('*', '*', { group: '*' })).toBe(false);
  });
});
