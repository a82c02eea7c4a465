/**
 * `stevedore agent` refuses bad input before it touches a cluster, and the chart's agent
 * DaemonSet and RBAC render as documented (off by default; least privilege when on). That the
 * RBAC is sufficient is shown by test/controllers/containerrun.integration.test.ts, whose agent
 * runs with exactly these rules.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { parsePolicy } from '../../src/policy/parse.js';
import { cleanupCli, cliTempDir, REPO_ROOT, stevedore } from '../cli/stevedore.js';

afterAll(() => cleanupCli());

function helmPath(): string {
  if (process.env['HELM']) return process.env['HELM'];
  const version = /^HELM_VERSION\s*:?=\s*(v\S+)/m.exec(readFileSync(join(REPO_ROOT, 'hack', 'helm.mk'), 'utf8'))![1]!;
  return join(process.env['STEVEDORE_CACHE'] || join(homedir(), '.cache', 'stevedore'), 'bin', `helm-${version}`);
}

interface Obj {
  kind: string;
  metadata: { name: string; namespace?: string; annotations?: Record<string, string> };
  data?: Record<string, string>;
  rules?: { apiGroups: string[]; resources: string[]; verbs: string[] }[];
  spec?: { template: { spec: Record<string, unknown> & { containers: Record<string, unknown>[]; volumes: Record<string, unknown>[] } } };
}

async function render(...set: string[]): Promise<Obj[]> {
  const { stdout } = await promisify(execFile)(
    helmPath(),
    ['template', 'stevedore', join(REPO_ROOT, 'charts', 'stevedore'), '--namespace', 'stevedore-system', ...set],
    {
      maxBuffer: 16 * 1024 * 1024,
    },
  );
  return parseAllDocuments(stdout)
    .map((d) => d.toJS() as Obj)
    .filter(Boolean);
}

describe('stevedore agent flags', () => {
  it('needs a node name', async () => {
    const env = { ...process.env, NODE_NAME: '' };
    const r = await stevedore(['agent', '--kubeconfig', '/nonexistent'], { env });
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/--node-name \(or \$NODE_NAME\) is required/);
  });

  it('names a bad duration, runtime or label', async () => {
    const bad = [
      [['--lease-duration', 'forever'], /--lease-duration: "forever" is not a duration/],
      [['--runtime', 'kata'], /--runtime must be runc or crun, got "kata"/],
      [['--node-labels', 'disk'], /"disk" is not KEY=VALUE/],
    ] as const;
    for (const [args, message] of bad) {
      const r = await stevedore(['agent', '--node-name', 'n1', ...args]);
      expect(r.code, args.join(' ')).toBe(125);
      expect(r.stderr).toMatch(message);
    }
  });
});

describe('stevedore agent --policy', () => {
  it('stops at start-up, before it touches a cluster, on a policy that does not parse or cannot be read', async () => {
    const dir = await cliTempDir('agent-policy');
    const bad = join(dir, 'policy.json');
    await writeFile(bad, '{"default": [{"type": "reject"}], "transports": {"docker": {"x": [{"type": "signedBy"');
    const unknown = join(dir, 'unknown.json');
    await writeFile(unknown, JSON.stringify({ default: [{ type: 'reject', why: 'no' }] }));
    const cases = [
      [bad, /invalid policy/],
      [unknown, /invalid policy.*unknown field "why"/],
      [join(dir, 'missing.json'), /cannot read policy file .*missing\.json/],
    ] as const;
    for (const [file, message] of cases) {
      const r = await stevedore(['agent', '--node-name', 'n1', '--kubeconfig', '/nonexistent', '--policy', file]);
      expect(r.code, file).toBe(125);
      expect(r.stderr).toMatch(message);
    }
  });
});

describe('chart: the node agent', () => {
  it('is off by default', async () => {
    const objs = await render();
    // (The build seccomp profile has a DaemonSet of its own: not the agent's.)
    expect(objs.filter((o) => o.metadata.name.includes('-agent'))).toEqual([]);
  });

  it('renders a DaemonSet with its own ServiceAccount, the node name, the host store and the runc state', async () => {
    const objs = await render('--set', 'agent.enabled=true', '--set', 'agent.storePath=/srv/stevedore');
    const ds = objs.find((o) => o.kind === 'DaemonSet' && o.metadata.name.endsWith('-agent'))!;
    const pod = ds.spec!.template.spec;
    expect(pod['serviceAccountName']).toBe('stevedore-agent');
    expect(pod['hostNetwork']).toBe(true);
    const c = pod.containers[0]!;
    expect(c['args']).toEqual(expect.arrayContaining(['agent', '--node-name=$(NODE_NAME)', '--lease-namespace=$(POD_NAMESPACE)', '--root=/srv/stevedore']));
    expect(JSON.stringify(c['env'])).toContain('spec.nodeName');
    expect(c['securityContext']).toMatchObject({ privileged: true, readOnlyRootFilesystem: true });
    expect(pod.volumes).toEqual(
      expect.arrayContaining([
        { name: 'store', hostPath: { path: '/srv/stevedore', type: 'DirectoryOrCreate' } },
        { name: 'runc-state', hostPath: { path: '/run/runc', type: 'DirectoryOrCreate' } },
      ]),
    );
    expect(
      objs
        .filter((o) => o.kind === 'ServiceAccount')
        .map((o) => o.metadata.name)
        .sort(),
    ).toEqual(['stevedore', 'stevedore-agent']);
  });

  it('mounts agent.policy (a map or JSON text) from a ConfigMap and passes --policy; none by default', async () => {
    const plain = await render('--set', 'agent.enabled=true');
    const plainPod = plain.find((o) => o.kind === 'DaemonSet' && o.metadata.name.endsWith('-agent'))!.spec!.template.spec;
    expect(JSON.stringify(plainPod.containers[0]!['args'])).not.toContain('--policy');
    expect(plain.filter((o) => o.kind === 'ConfigMap' && o.metadata.name.includes('-agent'))).toEqual([]);

    const policy = {
      default: [{ type: 'reject' }],
      transports: {
        docker: {
          'registry.example.com/apps': [
            { type: 'sigstoreSigned', keyData: Buffer.from('-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n').toString('base64') },
          ],
        },
      },
    };
    const dir = await cliTempDir('agent-chart');
    const values = join(dir, 'values.json');
    await writeFile(values, JSON.stringify({ agent: { enabled: true, policy } }));
    const file = join(dir, 'policy.json');
    await writeFile(file, JSON.stringify(policy, null, 2));
    // As a map in values, or a node's policy.json as it is (`--set-file`).
    for (const set of [
      ['-f', values],
      ['--set', 'agent.enabled=true', '--set-file', `agent.policy=${file}`],
    ]) {
      const objs = await render(...set);
      const cm = objs.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'stevedore-agent-policy')!;
      expect(JSON.parse(cm.data!['policy.json']!)).toEqual(policy);
      expect(() => parsePolicy(cm.data!['policy.json']!, 'policy.json')).not.toThrow();
      const ds = objs.find((o) => o.kind === 'DaemonSet' && o.metadata.name.endsWith('-agent'))!;
      const pod = ds.spec!.template.spec;
      const c = pod.containers[0]!;
      expect(c['args']).toContain('--policy=/etc/stevedore/policy/policy.json');
      expect(c['volumeMounts']).toEqual(expect.arrayContaining([{ name: 'policy', mountPath: '/etc/stevedore/policy', readOnly: true }]));
      expect(pod.volumes).toEqual(expect.arrayContaining([{ name: 'policy', configMap: { name: 'stevedore-agent-policy' } }]));
      expect((ds.spec!.template as unknown as { metadata: { annotations: Record<string, string> } }).metadata.annotations['checksum/policy']).toMatch(
        /^[0-9a-f]{64}$/,
      );
    }
  });

  it('grants the agent least privilege: Secrets and ConfigMaps only by get and only in opted-in namespaces, no writes beyond runs, status, events and its Leases', async () => {
    const objs = await render('--set', 'agent.enabled=true', '--set', 'agent.secretNamespaces={team-a,team-b}', '--set', 'tenantNamespaces={team-b,team-c}');
    const role = objs.find((o) => o.kind === 'ClusterRole' && o.metadata.name === 'stevedore-agent')!;
    const verbs = (res: string) => role.rules!.filter((r) => r.resources.includes(res)).flatMap((r) => r.verbs);
    expect(verbs('secrets')).toEqual([]);
    expect(verbs('configmaps')).toEqual([]);
    expect(verbs('containerruns').sort()).toEqual(['get', 'list', 'patch', 'watch']);
    expect(verbs('containerruns/status')).toEqual(['patch']);
    expect(verbs('namespaces')).toEqual(['get']);
    expect(verbs('events').sort()).toEqual(['create', 'patch']);
    expect(verbs('leases')).toEqual([]);
    expect(JSON.stringify(role.rules)).not.toContain('*');
    const secrets = objs.find((o) => o.kind === 'ClusterRole' && o.metadata.name === 'stevedore-agent-secrets')!;
    expect(secrets.rules).toEqual([{ apiGroups: [''], resources: ['secrets', 'configmaps'], verbs: ['get'] }]);
    const bindings = objs.filter((o) => o.kind === 'RoleBinding' && o.metadata.name === 'stevedore-agent-secrets');
    // The controller's opt-in (tenantNamespaces) is the agents' too, plus agent.secretNamespaces.
    expect(bindings.map((b) => b.metadata.namespace).sort()).toEqual(['team-a', 'team-b', 'team-c']);
    expect(objs.some((o) => o.kind === 'ClusterRoleBinding' && JSON.stringify(o).includes('stevedore-agent-secrets'))).toBe(false);
    const heartbeat = objs.find((o) => o.kind === 'Role' && o.metadata.name === 'stevedore-agent-heartbeat')!;
    expect(heartbeat.metadata.namespace).toBe('stevedore-system');
    expect(heartbeat.rules).toEqual([{ apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'] }]);
  });
});
