/** The build Pod spec and the reading of its outcome: pure functions, checked field by field. */
import type { V1Node, V1NodeRuntimeHandler, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { buildPod, buildPodName, userNamespaceSupport, type BuildPodOptions } from '../../src/controllers/imagebuild-pod.js';
import { parseBuildResult, podOutcome } from '../../src/controllers/imagebuild-result.js';
import { API_VERSION } from '../../src/k8s/api/common.js';
import type { ImageBuild } from '../../src/k8s/api/imagebuild.js';

const OPTS: BuildPodOptions = { image: 'stevedore:1', userNamespaces: true, runAsUser: 65532 };
const D1 = `sha256:${'a'.repeat(64)}`;
const D2 = `sha256:${'b'.repeat(64)}`;

function ib(spec: Partial<ImageBuild['spec']>, name = 'app'): ImageBuild {
  return {
    apiVersion: API_VERSION,
    kind: 'ImageBuild',
    metadata: { name, namespace: 'team', uid: 'u-1', generation: 3 },
    spec: { source: { inline: { containerfile: 'FROM x' } }, output: { image: 'reg.example/app:1' }, ...spec },
  };
}

describe('build Pod spec', () => {
  it('fetches a Git source with its credentials Secret and passes every build option to stevedore build', () => {
    const pod = buildPod(
      ib({
        source: { git: { url: 'https://git.example/app.git', revision: 'v1.2', credentials: { name: 'git-creds' } } },
        contextDir: 'services/api',
        containerfile: 'build/Containerfile',
        buildArgs: [{ name: 'VERSION', value: '1.2' }],
        target: 'runtime',
        cache: { repository: 'reg.example/cache', secret: { name: 'cache-creds' } },
        output: { image: 'reg.example/app:1', pushSecret: { name: 'push-creds' }, insecure: true },
        timeout: '10m',
        resources: { limits: { memory: '2Gi' } },
        nodeSelector: { 'kubernetes.io/arch': 'arm64' },
      }),
      OPTS,
    );
    expect(pod.metadata!.name).toBe('app-build-3');
    expect(pod.spec!.activeDeadlineSeconds).toBe(630);
    expect(pod.spec!.initContainers!.map((c) => c.name)).toEqual(['auth', 'source']);
    expect(pod.spec!.initContainers![0]!.args).toEqual([
      'context',
      'auth',
      '/var/run/stevedore/auth/config.json',
      '/var/run/stevedore/secrets/cache.json',
      '/var/run/stevedore/secrets/push.json',
    ]);
    expect(pod.spec!.initContainers![1]!.args).toEqual([
      'context',
      'git',
      'https://git.example/app.git',
      '/workspace/source',
      '--result-file',
      '/dev/termination-log',
      '--revision',
      'v1.2',
      '--credentials-dir',
      '/var/run/stevedore/git',
    ]);
    const build = pod.spec!.containers[0]!;
    expect(build.args).toEqual([
      'build',
      '--tag',
      'reg.example/app:1',
      '--result-file',
      '/dev/termination-log',
      '--authfile',
      '/var/run/stevedore/auth/config.json',
      '--tls-verify=false',
      '--file',
      '/workspace/source/services/api/build/Containerfile',
      '--build-arg',
      'VERSION=1.2',
      '--target',
      'runtime',
      '--cache-from',
      'reg.example/cache',
      '--cache-to',
      'reg.example/cache',
      '/workspace/source/services/api',
    ]);
    expect(build.resources).toEqual({ limits: { memory: '2Gi' }, requests: undefined });
    expect(build.terminationMessagePolicy).toBe('FallbackToLogsOnError');
    expect(pod.spec!.nodeSelector).toEqual({ 'kubernetes.io/arch': 'arm64' });
    const vols = Object.fromEntries(pod.spec!.volumes!.map((v) => [v.name, v]));
    expect(vols['git-credentials']!.secret).toEqual({ secretName: 'git-creds', defaultMode: 0o400 });
    expect(vols['auth']!.emptyDir).toEqual({ medium: 'Memory', sizeLimit: '1Mi' });
    // The build container sees the merged auth file, never the Secrets themselves.
    expect(build.volumeMounts!.map((m) => m.name).sort()).toEqual(['auth', 'tmp', 'workspace']);
  });

  it('passes output.compression to the build (Containerfile) and to the push (script)', () => {
    const file = buildPod(
      ib({ source: { inline: { containerfile: 'FROM scratch\n' } }, output: { image: 'reg.example/app:1', compression: 'zstd:chunked' } }),
      OPTS,
    );
    const args = file.spec!.containers[0]!.args!;
    expect(args.slice(args.indexOf('--compression-format'), args.indexOf('--compression-format') + 2)).toEqual(['--compression-format', 'zstd:chunked']);
    const script = buildPod(
      ib({ source: { script: { inline: 'buildah from scratch\n' } }, output: { image: 'reg.example/app:1', compression: 'zstd' } }),
      OPTS,
    );
    const push = script.spec!.containers[0]!.args!;
    expect(push.slice(0, 2)).toEqual(['buildah', 'push']);
    expect(push.slice(push.indexOf('--compression-format'), push.indexOf('--compression-format') + 2)).toEqual(['--compression-format', 'zstd']);
    const plain = buildPod(ib({ source: { inline: { containerfile: 'FROM scratch\n' } }, output: { image: 'reg.example/app:1' } }), OPTS);
    expect(plain.spec!.containers[0]!.args).not.toContain('--compression-format');
  });

  it("gives the administrator's source policy to a Containerfile build as STEVEDORE_SOURCE_POLICY, and to no other container", () => {
    const policy = '{"rules":[{"action":"DENY","selector":{"identifier":"docker-image://docker.io/*","matchType":"WILDCARD"}}]}';
    const pod = buildPod(ib({ source: { git: { url: 'https://git.example/app.git' } }, output: { image: 'reg.example/app:1' } }), {
      ...OPTS,
      sourcePolicy: policy,
    });
    expect(pod.spec!.containers[0]!.env).toContainEqual({ name: 'STEVEDORE_SOURCE_POLICY', value: policy });
    for (const c of pod.spec!.initContainers!) expect((c.env ?? []).map((e) => e.name)).not.toContain('STEVEDORE_SOURCE_POLICY');
    const without = buildPod(ib({ source: { git: { url: 'https://git.example/app.git' } }, output: { image: 'reg.example/app:1' } }), OPTS);
    expect((without.spec!.containers[0]!.env ?? []).map((e) => e.name)).not.toContain('STEVEDORE_SOURCE_POLICY');
  });

  it('locks the Pod down: own user namespace, non-root, no token, no capabilities, read-only root', () => {
    const pod = buildPod(ib({}), OPTS);
    expect(pod.spec).toMatchObject({ hostUsers: false, automountServiceAccountToken: false, enableServiceLinks: false, restartPolicy: 'Never' });
    expect(pod.spec!.securityContext).toEqual({
      runAsNonRoot: true,
      runAsUser: 65532,
      runAsGroup: 65532,
      fsGroup: 65532,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    const locked = { allowPrivilegeEscalation: false, privileged: false, capabilities: { drop: ['ALL'] }, runAsNonRoot: true, readOnlyRootFilesystem: true };
    for (const c of pod.spec!.initContainers!) expect(c.securityContext).toEqual(locked);
    // The build container alone gets an unmasked /proc (RUN steps mount procfs), which only its own
    // user namespace makes acceptable; nothing else is added.
    expect(pod.spec!.containers[0]!.securityContext).toEqual({ ...locked, procMount: 'Unmasked' });
    expect(pod.metadata!.ownerReferences).toEqual([
      { apiVersion: API_VERSION, kind: 'ImageBuild', name: 'app', uid: 'u-1', controller: true, blockOwnerDeletion: true },
    ]);
    const hostUsers = buildPod(ib({}), { ...OPTS, userNamespaces: false });
    expect(hostUsers.spec!.hostUsers).toBe(true);
    // Without a user namespace the API server refuses Unmasked, and the node's /proc must stay masked.
    for (const c of [...hostUsers.spec!.initContainers!, ...hostUsers.spec!.containers]) expect(c.securityContext).toEqual(locked);
  });

  it('runs under the Localhost seccomp profile it is given (the chart installs it)', () => {
    const pod = buildPod(ib({}), { ...OPTS, seccompProfile: { type: 'Localhost', localhostProfile: 'stevedore/builder.json' } });
    expect(pod.spec!.securityContext!.seccompProfile).toEqual({ type: 'Localhost', localhostProfile: 'stevedore/builder.json' });
  });

  it('keeps Pod names valid hostnames and distinct per rebuild request', () => {
    const long = 'a'.repeat(80);
    const n = buildPodName(long, 12);
    expect(n.length).toBeLessThanOrEqual(63);
    expect(n).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    expect(n).not.toBe(buildPodName(`${'a'.repeat(79)}b`, 12));
    expect(buildPodName('app', 2, 'now')).toMatch(/^app-build-2-[0-9a-f]{5}$/);
    expect(buildPodName('app', 2, 'now')).not.toBe(buildPodName('app', 2, 'later'));
  });
});

const terminated = (name: string, exitCode: number, message?: string, reason = exitCode === 0 ? 'Completed' : 'Error') => ({
  name,
  image: 'i',
  imageID: '',
  ready: false,
  restartCount: 0,
  state: { terminated: { exitCode, message, reason } },
});
const pod = (status: V1Pod['status']): V1Pod => ({ metadata: { name: 'p' }, status });

describe('reading the build Pod', () => {
  it('returns the digest, size and platforms of a successful build, with the source commit', () => {
    const result = JSON.stringify({ image: 'r/app:1', digest: D1, size: 1234, platforms: [{ platform: 'linux/amd64', digest: D2 }] });
    const o = podOutcome(
      pod({
        phase: 'Succeeded',
        initContainerStatuses: [terminated('source', 0, '{"sourceCommit":"abc123"}')],
        containerStatuses: [terminated('build', 0, result)],
      }),
    );
    expect(o).toEqual({
      state: 'succeeded',
      sourceCommit: 'abc123',
      result: { image: 'r/app:1', digest: D1, size: 1234, platforms: [{ platform: 'linux/amd64', digest: D2 }] },
    });
  });

  it('takes the builder’s failure reason and message', () => {
    const o = podOutcome(
      pod({
        phase: 'Failed',
        containerStatuses: [terminated('build', 1, '{"error":{"reason":"BuildStepFailed","message":"RUN false: exit 1 (Containerfile:3)"}}')],
      }),
    );
    expect(o).toEqual({ state: 'failed', failure: { reason: 'BuildStepFailed', message: 'RUN false: exit 1 (Containerfile:3)' } });
  });

  it('still fails correctly when the builder left no result: exit code, OOM, log tail', () => {
    const crash = podOutcome(pod({ phase: 'Failed', containerStatuses: [terminated('build', 125, 'Error: something broke\n')] }));
    expect(crash).toEqual({ state: 'failed', failure: { reason: 'Error', message: 'build container failed (exit code 125): Error: something broke' } });
    const oom = podOutcome(pod({ phase: 'Failed', containerStatuses: [terminated('build', 137, undefined, 'OOMKilled')] }));
    expect(oom).toMatchObject({ state: 'failed', failure: { reason: 'OOMKilled' } });
    const noResult = podOutcome(pod({ phase: 'Succeeded', containerStatuses: [terminated('build', 0, 'not json')] }));
    expect(noResult).toMatchObject({ state: 'failed', failure: { reason: 'Error' } });
  });

  it('reports a failed source step as SourceUnavailable and never looks at the build container', () => {
    const o = podOutcome(pod({ phase: 'Failed', initContainerStatuses: [terminated('source', 125, 'fatal: could not read from remote')] }));
    expect(o).toMatchObject({ state: 'failed', failure: { reason: 'SourceUnavailable', message: expect.stringContaining('could not read from remote') } });
  });

  it('tells pending (with the waiting reason), running and deadline-killed Pods apart', () => {
    const waiting = {
      name: 'source',
      image: 'i',
      imageID: '',
      ready: false,
      restartCount: 0,
      state: { waiting: { reason: 'ImagePullBackOff', message: 'no such image' } },
    };
    expect(podOutcome(pod({ phase: 'Pending', initContainerStatuses: [waiting] }))).toEqual({
      state: 'pending',
      message: 'source: ImagePullBackOff: no such image',
    });
    expect(podOutcome(pod({ phase: 'Running' }))).toEqual({ state: 'running' });
    expect(podOutcome(pod({ phase: 'Failed', reason: 'DeadlineExceeded', message: 'too long' }))).toEqual({
      state: 'failed',
      failure: { reason: 'DeadlineExceeded', message: 'too long' },
    });
  });

  it('refuses malformed results rather than writing them to status', () => {
    expect(parseBuildResult('{"digest":"sha256:short"}')).toBeUndefined();
    expect(parseBuildResult(`{"digest":"${D1}","size":-1,"platforms":[{"platform":"x","digest":"bad"}]}`)).toEqual({ image: '', digest: D1, platforms: [] });
    expect(parseBuildResult('{"error":{"reason":"has spaces!","message":"m"}}')).toEqual({ reason: 'Error', message: 'm' });
  });
});

describe('build Pod signing and attestations', () => {
  it('mounts only cosign.key and cosign.password into the build container and passes sign, SBOM and provenance flags', () => {
    const pod = buildPod(
      ib({
        source: { git: { url: 'https://user:tok@git.example/app.git', revision: 'main' } },
        contextDir: 'svc',
        signing: { secretRef: { name: 'cosign-key' } },
        sbom: true,
        sbomFormat: 'cyclonedx',
      }),
      OPTS,
    );
    const build = pod.spec!.containers[0]!;
    const args = build.args!.join(' ');
    expect(args).toContain('--sign-key /var/run/stevedore/signing/cosign.key --sign-password-file /var/run/stevedore/signing/cosign.password');
    expect(args).toContain('--sbom cyclonedx-json');
    // Provenance defaults to on with a key; the URI is SLSA's git+URL without the userinfo.
    expect(args).toContain('--provenance --source-uri git+https://git.example/app.git');
    expect(args).not.toContain('tok');
    expect(pod.spec!.volumes!.find((v) => v.name === 'signing')!.secret!.items!.map((i) => i.key)).toEqual(['cosign.key', 'cosign.password']);
    expect(build.volumeMounts).toContainEqual({ name: 'signing', mountPath: '/var/run/stevedore/signing', readOnly: true });
    for (const c of pod.spec!.initContainers!) expect(c.volumeMounts!.map((m) => m.name)).not.toContain('signing');
  });

  it('passes no signing flags without a key, and no --provenance when provenance is false', () => {
    expect(buildPod(ib({}), OPTS).spec!.containers[0]!.args!.join(' ')).not.toMatch(/--sign-key|--sbom|--provenance/);
    const noProv = buildPod(ib({ signing: { secretRef: { name: 'k' } }, provenance: false }), OPTS).spec!.containers[0]!.args!.join(' ');
    expect(noProv).toContain('--sign-key');
    expect(noProv).not.toMatch(/--sbom|--provenance/);
  });

  it('reads the signature and attestation digests from the result, dropping malformed entries', () => {
    const r = parseBuildResult(
      JSON.stringify({
        image: 'reg.example/app:1',
        digest: D1,
        signatureDigest: D2,
        attestations: [
          { kind: 'sbom', predicateType: 'https://spdx.dev/Document', digest: D2, subject: D1 },
          { kind: 'evil', predicateType: 'x', digest: D2 },
          { kind: 'provenance', predicateType: 'https://slsa.dev/provenance/v1', digest: 'not-a-digest' },
        ],
      }),
    );
    expect(r).toMatchObject({ signatureDigest: D2, attestations: [{ kind: 'sbom', predicateType: 'https://spdx.dev/Document', digest: D2, subject: D1 }] });
  });
});

describe('user-namespace support of the nodes', () => {
  const node = (name: string, handlers: V1NodeRuntimeHandler[] | undefined, labels: Record<string, string> = {}): V1Node => ({
    metadata: { name, labels },
    status: handlers === undefined ? {} : { runtimeHandlers: handlers },
  });
  const userns = (on: boolean) => [{ name: '', features: { userNamespaces: on, recursiveReadOnlyMounts: true } }];

  it('is false, naming the nodes and what they need, when every node reports no support', () => {
    const r = userNamespaceSupport([node('a', userns(false)), node('b', [{ name: '', features: {} }])]);
    expect(r.supported).toBe(false);
    expect(r.message).toContain('a, b reports no user-namespace support');
    expect(r.message).toContain('containerd >= 2.0');
    expect(r.message).toContain('buildPods.userNamespaces=false');
  });

  it('is true when one candidate node supports it, and looks only at the default handler', () => {
    expect(userNamespaceSupport([node('a', userns(false)), node('b', userns(true))]).supported).toBe(true);
    expect(
      userNamespaceSupport([
        node('a', [
          { name: 'kata', features: { userNamespaces: true } },
          { name: '', features: { userNamespaces: false } },
        ]),
      ]).supported,
    ).toBe(false);
  });

  it("honours the build's nodeSelector, and is unknown (never blocks) without candidates or reports", () => {
    const nodes = [node('a', userns(true), { pool: 'old' }), node('b', userns(false), { pool: 'build' })];
    expect(userNamespaceSupport(nodes, { pool: 'build' }).supported).toBe(false);
    expect(userNamespaceSupport(nodes, { pool: 'old' }).supported).toBe(true);
    expect(userNamespaceSupport(nodes, { pool: 'none' }).supported).toBeUndefined();
    expect(userNamespaceSupport([node('a', userns(false)), node('old', undefined)]).supported).toBeUndefined();
    expect(userNamespaceSupport([]).supported).toBeUndefined();
  });
});
