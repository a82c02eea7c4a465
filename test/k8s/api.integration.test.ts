import { CustomObjectsApi } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { API_VERSION, GROUP, VERSION, type ContainerRun, type ImageBuild, type ImageMirror } from '../../src/k8s/api/index.js';
import { startControlPlane, type ControlPlane, type RawResponse } from '../../hack/lib/harness/controlplane.js';

const NS = 'api-test';
const TABLE = 'application/json;as=Table;v=v1;g=meta.k8s.io';

interface Table {
  kind: 'Table';
  columnDefinitions: { name: string; type: string; priority: number }[];
  rows: { cells: unknown[]; object: { metadata: { name: string } } }[];
}

let cp: ControlPlane;

beforeAll(async () => {
  cp = await startControlPlane();
  await cp.installCRDs();
  await cp.createNamespace(NS);
});

afterAll(async () => {
  await cp?.stop();
});

const path = (plural: string, name?: string, sub?: string) =>
  `/apis/${GROUP}/${VERSION}/namespaces/${NS}/${plural}${name ? `/${name}` : ''}${sub ? `/${sub}` : ''}`;

async function create(plural: string, body: object): Promise<RawResponse> {
  return cp.request('POST', path(plural), { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

async function mergePatchStatus(plural: string, name: string, status: object): Promise<RawResponse> {
  return cp.request('PATCH', path(plural, name, 'status'), {
    headers: { 'content-type': 'application/merge-patch+json' },
    body: JSON.stringify({ status }),
  });
}

async function table(plural: string): Promise<Table> {
  const res = await cp.request('GET', path(plural), { headers: { accept: TABLE } });
  expect(res.status).toBe(200);
  return res.json as Table;
}

function cellsByColumn(t: Table, name: string): Record<string, unknown> {
  const row = t.rows.find((r) => r.object.metadata.name === name)!;
  return Object.fromEntries(t.columnDefinitions.map((c, i) => [c.name, row.cells[i]]));
}

const ready = (reason: string, status: 'True' | 'False' = 'True') => ({
  type: 'Ready',
  status,
  reason,
  message: `test: ${reason}`,
  lastTransitionTime: '2026-01-02T03:04:05Z',
  observedGeneration: 1,
});

const mirror = (name: string, spec: object) => ({ apiVersion: API_VERSION, kind: 'ImageMirror', metadata: { name }, spec });
const build = (name: string, spec: object) => ({ apiVersion: API_VERSION, kind: 'ImageBuild', metadata: { name }, spec });
const run = (name: string, spec: object) => ({ apiVersion: API_VERSION, kind: 'ContainerRun', metadata: { name }, spec });

const validMirror: ImageMirror['spec'] = {
  source: { registry: { repository: 'registry.example.com/team/app', credentials: { name: 'src-creds' } } },
  destination: { layout: { claimName: 'airgap', path: 'exports/app' } },
  tags: { semver: '>=1.0.0 <2', newest: 3 },
  schedule: { interval: '30m' },
  prune: true,
};
const validBuild: ImageBuild['spec'] = {
  source: { git: { url: 'https://git.example.com/team/app.git', revision: 'main' } },
  contextDir: 'services/api',
  buildArgs: [{ name: 'VERSION', value: '1.2.3' }],
  platforms: ['linux/amd64', 'linux/arm64'],
  output: { image: 'registry.example.com/team/app:1.2.3', pushSecret: { name: 'push' } },
  resources: { limits: { memory: '2Gi', cpu: 2 } },
};
const validRun: ContainerRun['spec'] = {
  image: 'registry.example.com/tools/busybox:1.36',
  command: ['sh', '-c', 'echo hello'],
  env: [
    { name: 'A', value: '1' },
    { name: 'B', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } },
  ],
  resources: { memory: '64Mi', cpu: '500m', pids: 64 },
  nodeSelector: { 'kubernetes.io/arch': 'amd64' },
  volumes: [
    { name: 'scratch', mountPath: '/scratch', emptyDir: {} },
    { name: 'conf', mountPath: '/etc/app', configMap: { name: 'app-conf' } },
  ],
  restartPolicy: 'OnFailure',
  backoffLimit: 2,
  runtime: 'crun',
};

describe('CRDs on a real kube-apiserver', () => {
  test('valid objects of each kind are accepted and defaults are applied', async () => {
    const objects = cp.kubeConfig.makeApiClient(CustomObjectsApi);
    const m = (await objects.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: NS,
      plural: 'imagemirrors',
      body: mirror('app', validMirror),
    })) as ImageMirror;
    expect(m.spec.suspend).toBe(false);
    expect(m.spec.dryRun).toBe(false);
    expect(m.spec.source.registry!.insecure).toBe(false);

    const b = (await objects.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: NS,
      plural: 'imagebuilds',
      body: build('app', validBuild),
    })) as ImageBuild;
    expect(b.spec.timeout).toBe('1h');
    expect(b.spec.successfulBuildsHistoryLimit).toBe(1);

    const r = (await objects.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: NS,
      plural: 'containerruns',
      body: run('hello', validRun),
    })) as ContainerRun;
    expect(r.spec.network).toBe('none');
    expect(r.metadata.generation).toBe(1);
  });

  test.each([
    [
      'imagemirrors',
      mirror('both-sources', { ...validMirror, source: { registry: { repository: 'r.example.com/a' }, layout: { claimName: 'x' } } }),
      'exactly one of source.registry or source.layout must be set',
    ],
    [
      'imagemirrors',
      mirror('no-destination-kind', { ...validMirror, destination: {} }),
      'exactly one of destination.registry or destination.layout must be set',
    ],
    [
      'imagemirrors',
      mirror('interval-and-cron', { ...validMirror, schedule: { interval: '1h', cron: '0 * * * *' } }),
      'schedule.interval and schedule.cron are mutually exclusive',
    ],
    ['imagemirrors', mirror('short-interval', { ...validMirror, schedule: { interval: '10s' } }), 'schedule.interval must be at least 1m'],
    [
      'imagemirrors',
      mirror('list-and-regex', { ...validMirror, tags: { list: ['1.0'], allow: '^1\\.' } }),
      'tags.list names tags exactly and cannot be combined',
    ],
    ['imagemirrors', mirror('missing-destination', { source: validMirror.source }), 'spec.destination: Required value'],
    [
      'imagebuilds',
      build('two-sources', { ...validBuild, source: { git: { url: 'https://g.example.com/x' }, inline: { containerfile: 'FROM scratch' } } }),
      'exactly one of source.git, source.artifact, source.inline or source.script must be set',
    ],
    ['imagebuilds', build('escaping-context', { ...validBuild, contextDir: 'a/../../etc' }), 'must be a relative path that stays inside the source'],
    ['imagebuilds', build('no-output', { source: validBuild.source }), 'spec.output: Required value'],
    ['containerruns', run('node-and-selector', { ...validRun, nodeName: 'node-1' }), 'nodeName and nodeSelector are mutually exclusive'],
    [
      'containerruns',
      run('bridge', { ...validRun, network: 'bridge' }),
      'spec.network: Unsupported value: "bridge": supported values: "none", "private", "host"',
    ],
    ['containerruns', run('backoff-never', { ...validRun, restartPolicy: 'Never' }), 'backoffLimit requires restartPolicy OnFailure'],
    [
      'containerruns',
      run('two-volume-sources', { ...validRun, volumes: [{ name: 'v', mountPath: '/v', emptyDir: {}, secret: { secretName: 's' } }] }),
      'a volume needs exactly one of emptyDir, configMap or secret',
    ],
    ['containerruns', run('runtime', { ...validRun, runtime: 'kata' }), 'spec.runtime: Unsupported value: "kata"'],
  ])('%s %s is refused: %s', async (plural, body, message) => {
    const res = await create(plural, body);
    expect(res.status).toBe(422);
    const status = res.json as { reason: string; message: string };
    expect(status.reason).toBe('Invalid');
    expect(status.message).toContain(message);
  });

  test('status is written with a merge patch on /status and does not bump generation', async () => {
    const res = await mergePatchStatus('imagemirrors', 'app', {
      observedGeneration: 1,
      conditions: [ready('Succeeded')],
      lastSyncTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      counts: { selected: 2, copied: 1, skipped: 1, failed: 0, pruned: 0 },
      tags: [
        { tag: '1.0.0', digest: `sha256:${'a'.repeat(64)}`, action: 'copied' },
        { tag: '1.1.0', digest: `sha256:${'b'.repeat(64)}`, action: 'skipped' },
      ],
    });
    expect(res.status).toBe(200);
    const m = res.json as ImageMirror;
    expect(m.metadata.generation).toBe(1);
    expect(m.status!.counts!.copied).toBe(1);

    // The main resource ignores status; /status ignores spec.
    const spec = await cp.request('PATCH', path('imagemirrors', 'app'), {
      headers: { 'content-type': 'application/merge-patch+json' },
      body: JSON.stringify({ spec: { suspend: true }, status: { counts: { copied: 99 } } }),
    });
    expect(spec.status).toBe(200);
    expect((spec.json as ImageMirror).status!.counts!.copied).toBe(1);
    expect((spec.json as ImageMirror).metadata.generation).toBe(2);

    const bad = await mergePatchStatus('imagemirrors', 'app', { tags: [{ tag: '1.2.0', action: 'moved' }] });
    expect(bad.status).toBe(422);
    expect((bad.json as { message: string }).message).toContain('Unsupported value: "moved"');
  });

  test('printer columns: ImageMirror shows Ready, Reason, Last Sync, Age', async () => {
    const t = await table('imagemirrors');
    expect(t.columnDefinitions.filter((c) => c.priority === 0).map((c) => c.name)).toEqual(['Name', 'Ready', 'Reason', 'Last Sync', 'Age']);
    const cells = cellsByColumn(t, 'app');
    expect(cells).toMatchObject({ Name: 'app', Ready: 'True', Reason: 'Succeeded', Copied: 1, Source: 'registry.example.com/team/app' });
    expect(String(cells['Last Sync'])).toMatch(/^\d+s$/);
  });

  test('printer columns: ImageBuild shows its digest', async () => {
    const digest = `sha256:${'c'.repeat(64)}`;
    const res = await mergePatchStatus('imagebuilds', 'app', {
      conditions: [ready('Succeeded')],
      imageDigest: digest,
      imageSize: 12345678,
      sourceCommit: 'f'.repeat(40),
      platforms: [{ platform: 'linux/amd64', digest: `sha256:${'d'.repeat(64)}` }],
    });
    expect(res.status).toBe(200);
    const t = await table('imagebuilds');
    expect(t.columnDefinitions.filter((c) => c.priority === 0).map((c) => c.name)).toEqual(['Name', 'Ready', 'Reason', 'Digest', 'Age']);
    expect(cellsByColumn(t, 'app')).toMatchObject({ Ready: 'True', Reason: 'Succeeded', Digest: digest, Image: validBuild.output.image });
  });

  test('printer columns: ContainerRun shows phase and exit code', async () => {
    const res = await mergePatchStatus('containerruns', 'hello', {
      phase: 'Failed',
      exitCode: 137,
      signal: 'SIGKILL',
      reason: 'OOMKilled',
      nodeName: 'node-1',
      restartCount: 2,
      logTail: 'line 1\nline 2\n',
      conditions: [ready('OOMKilled', 'False')],
    });
    expect(res.status).toBe(200);
    const t = await table('containerruns');
    expect(t.columnDefinitions.filter((c) => c.priority === 0).map((c) => c.name)).toEqual(['Name', 'Phase', 'Exit Code', 'Ready', 'Reason', 'Age']);
    expect(cellsByColumn(t, 'hello')).toMatchObject({ Phase: 'Failed', 'Exit Code': 137, Ready: 'False', Reason: 'OOMKilled', Node: 'node-1' });
  });

  test('short names and the stevedore category are served by discovery', async () => {
    const res = await cp.request('GET', `/apis/${GROUP}/${VERSION}`);
    const list = res.json as { resources: { name: string; shortNames?: string[]; categories?: string[] }[] };
    const byName = Object.fromEntries(list.resources.map((r) => [r.name, r]));
    expect(byName['imagebuilds']).toMatchObject({ shortNames: ['ib'], categories: ['stevedore'] });
    expect(byName['imagemirrors']).toMatchObject({ shortNames: ['im'], categories: ['stevedore'] });
    expect(byName['containerruns']).toMatchObject({ shortNames: ['crun'], categories: ['stevedore'] });
    expect(byName['containerruns/status']).toBeDefined();
  });

  test('RBAC applies to ServiceAccount tokens from the TokenRequest API', async () => {
    const token = await cp.serviceAccountToken(NS, 'reader');
    const objects = cp.kubeConfigForToken(token).makeApiClient(CustomObjectsApi);
    const list = () => objects.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: NS, plural: 'imagemirrors' });
    await expect(list()).rejects.toMatchObject({ code: 403 });

    const json = { headers: { 'content-type': 'application/json' } };
    const role = await cp.request('POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${NS}/roles`, {
      ...json,
      body: JSON.stringify({
        metadata: { name: 'mirror-reader' },
        rules: [{ apiGroups: [GROUP], resources: ['imagemirrors'], verbs: ['get', 'list', 'watch'] }],
      }),
    });
    expect(role.status).toBe(201);
    const binding = await cp.request('POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${NS}/rolebindings`, {
      ...json,
      body: JSON.stringify({
        metadata: { name: 'mirror-reader' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'mirror-reader' },
        subjects: [{ kind: 'ServiceAccount', name: 'reader', namespace: NS }],
      }),
    });
    expect(binding.status).toBe(201);
    const items = (await list()) as { items: ImageMirror[] };
    expect(items.items.map((i) => i.metadata.name)).toContain('app');
  });
});
