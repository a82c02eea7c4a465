/**
 * The build Pod of a script source (spec.source.script), compared with a Containerfile build's:
 * the hostile tenant's script gets no more than a Containerfile's RUN steps. Same Pod security
 * context, the script's container has exactly the security context of the Containerfile build's
 * `build` container (the one running RUN steps), no credentials, signing key, token or host
 * path; only the push container (no tenant code) reads the merged auth file.
 */
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { buildPod, type BuildPodOptions } from '../../src/controllers/imagebuild-pod.js';
import { SCRIPT_IMAGE, scriptSpecProblem } from '../../src/controllers/imagebuild-pod-script.js';
import { API_VERSION } from '../../src/k8s/api/common.js';
import type { ImageBuild } from '../../src/k8s/api/imagebuild.js';

const OPTS: BuildPodOptions = {
  image: 'stevedore:1',
  userNamespaces: true,
  runAsUser: 65532,
  seccompProfile: { type: 'Localhost', localhostProfile: 'stevedore/builder.json' },
};
const SCRIPT = 'c=$(buildah from scratch)\nbuildah commit "$c" "$IMAGE"\n';

function ib(spec: Partial<ImageBuild['spec']>): ImageBuild {
  return {
    apiVersion: API_VERSION,
    kind: 'ImageBuild',
    metadata: { name: 'app', namespace: 'team', uid: 'u-1', generation: 2 },
    spec: { source: { inline: { containerfile: 'FROM x' } }, output: { image: 'reg.example/app:1', pushSecret: { name: 'push-creds' } }, ...spec },
  };
}
const containers = (p: V1Pod): V1Container[] => [...(p.spec!.initContainers ?? []), ...p.spec!.containers];
const byName = (p: V1Pod, name: string) => containers(p).find((c) => c.name === name)!;

describe('ImageBuild script source: the build Pod', () => {
  const file = buildPod(ib({}), OPTS);
  const script = buildPod(ib({ source: { script: { inline: SCRIPT } }, buildArgs: [{ name: 'FLAVOUR', value: 'slim' }] }), OPTS);

  it('runs the script (sh, buildah = stevedore buildah) in an init container, then pushes $IMAGE to spec.output.image with the result file', () => {
    expect(containers(script).map((c) => c.name)).toEqual(['auth', 'script', 'build']);
    const s = byName(script, 'script');
    expect(s.image).toBe(OPTS.image);
    expect(s.command).toBeUndefined();
    expect(s.args).toEqual(['script', '--workdir', '/workspace/source', '-c', SCRIPT]);
    expect(s.env).toEqual(
      expect.arrayContaining([
        { name: 'FLAVOUR', value: 'slim' },
        { name: 'IMAGE', value: SCRIPT_IMAGE },
        { name: 'OUTPUT_IMAGE', value: 'reg.example/app:1' },
        { name: 'STEVEDORE_ROOT', value: '/workspace/store' },
      ]),
    );
    const b = byName(script, 'build');
    expect(b.args).toEqual([
      'buildah',
      'push',
      '--result-file',
      '/dev/termination-log',
      '--authfile',
      '/var/run/stevedore/auth/config.json',
      SCRIPT_IMAGE,
      'docker://reg.example/app:1',
    ]);
    expect(b.env).toContainEqual({ name: 'STEVEDORE_ROOT', value: '/workspace/store' });
    expect(b.terminationMessagePolicy).toBe('FallbackToLogsOnError');
  });

  it('has the security settings of a Containerfile build: Pod-level equal, the script container equal to the Containerfile build container', () => {
    for (const k of [
      'hostUsers',
      'automountServiceAccountToken',
      'enableServiceLinks',
      'securityContext',
      'serviceAccountName',
      'activeDeadlineSeconds',
      'restartPolicy',
      'hostNetwork',
      'hostPID',
      'hostIPC',
    ] as const) {
      expect(script.spec![k], k).toEqual(file.spec![k]);
    }
    expect(script.spec!.hostUsers).toBe(false);
    expect(script.spec!.automountServiceAccountToken).toBe(false);
    // The script starts RUN containers (buildah run) as a Containerfile build's RUN steps do: the same context, procMount included.
    expect(byName(script, 'script').securityContext).toEqual(byName(file, 'build').securityContext);
    expect(byName(script, 'script').securityContext).toMatchObject({
      privileged: false,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
    });
    // Every other container is one of a Containerfile build's (the push container as the auth and source steps).
    const allowed = containers(file).map((c) => JSON.stringify(c.securityContext));
    for (const c of containers(script)) expect(allowed, c.name).toContain(JSON.stringify(c.securityContext));
    // Nothing beyond the Containerfile build's volumes: no hostPath, no other Secret.
    expect(script.spec!.volumes!.map((v) => v.name).sort()).toEqual(file.spec!.volumes!.map((v) => v.name).sort());
    expect(script.spec!.volumes!.some((v) => v.hostPath)).toBe(false);
  });

  it('gives the script no credentials: only the push container mounts the auth file; no signing key, no token', () => {
    const s = byName(script, 'script');
    expect(s.volumeMounts!.map((m) => m.name).sort()).toEqual(['tmp', 'workspace']);
    expect(s.envFrom).toBeUndefined();
    expect(s.env!.some((e) => e.valueFrom)).toBe(false);
    expect(byName(script, 'build').volumeMounts!.map((m) => m.name)).toContain('auth');
    expect(script.spec!.volumes!.some((v) => v.name === 'signing')).toBe(false);
  });

  it('what a script build does not do is refused by name (the CRD rules say the same)', () => {
    const spec = (extra: Partial<ImageBuild['spec']>) => ib({ source: { script: { inline: SCRIPT } }, ...extra }).spec;
    expect(scriptSpecProblem(spec({}))).toBeUndefined();
    expect(scriptSpecProblem(ib({}).spec)).toBeUndefined();
    expect(scriptSpecProblem(spec({ signing: { secretRef: { name: 'k' } } }))).toMatch(/^spec\.signing: /);
    expect(scriptSpecProblem(spec({ platforms: ['linux/arm64'] }))).toMatch(/^spec\.platforms: /);
    expect(scriptSpecProblem(spec({ cache: {} }))).toMatch(/^spec\.cache: /);
    expect(scriptSpecProblem(spec({ buildArgs: [{ name: 'PATH', value: '/evil' }] }))).toMatch(/^spec\.buildArgs: PATH is set by the build Pod/);
  });
});
