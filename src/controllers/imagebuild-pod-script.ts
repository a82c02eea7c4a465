/**
 * The two containers of a script build's Pod (spec.source.script), in place of a Containerfile
 * build's `source` init container and `build` container:
 *
 * - `script` (init): `stevedore script`, which runs the tenant's shell script (`sh -eu`) with
 *   `buildah` on PATH meaning `stevedore buildah`. It commits the image to the local store name in
 *   $IMAGE. It mounts the workspace and /tmp only: no registry credentials, no signing key, no
 *   service account token; its security context is the one RUN steps get in a Containerfile build
 *   (the `build` container's), since its `buildah run` starts the same RUN containers.
 * - `build`: `stevedore buildah push` of $IMAGE to spec.output.image with the merged auth file,
 *   writing the result (digest, size) as its termination message, as `stevedore build` does.
 *
 * Both share the store on the workspace emptyDir (STEVEDORE_ROOT).
 */
import type { V1Container, V1EnvVar, V1VolumeMount } from '@kubernetes/client-node';
import type { ImageBuild } from '../k8s/api/imagebuild.js';

/** The local store name the script commits to ($IMAGE) and the Pod pushes. */
export const SCRIPT_IMAGE = 'localhost/output:latest';
/** Environment the Pod sets for a script; a buildArg may not take these names. */
const SCRIPT_RESERVED_ENV = ['HOME', 'TMPDIR', 'PATH', 'IMAGE', 'OUTPUT_IMAGE', 'STEVEDORE_ROOT'] as const;

/** What a script build cannot do (the CRD refuses it too; this catches objects stored before those rules). Returns the problem, or undefined. */
export function scriptSpecProblem(spec: ImageBuild['spec']): string | undefined {
  if (!spec.source.script) return undefined;
  if (spec.signing) return 'spec.signing: a script build is not signed (not supported yet)';
  if (spec.platforms) return 'spec.platforms: a script build is for the platform of the node it runs on';
  if (spec.cache) return 'spec.cache: a script build uses no layer cache';
  const reserved = (spec.buildArgs ?? []).find((a) => (SCRIPT_RESERVED_ENV as readonly string[]).includes(a.name));
  if (reserved) return `spec.buildArgs: ${reserved.name} is set by the build Pod (${SCRIPT_RESERVED_ENV.join(', ')})`;
  return undefined;
}

export interface ScriptPodParts {
  /** Builds a container with the Pod's common settings (image, security context, env, resources). */
  common: (c: V1Container) => V1Container;
  workspaceMounts: V1VolumeMount[];
  authMounts: V1VolumeMount[];
  authArgs: string[];
  tls: string[];
  paths: { workspace: string; source: string; terminationLog: string };
}

export function scriptContainers(ib: ImageBuild, p: ScriptPodParts): { script: V1Container; push: V1Container } {
  const spec = ib.spec;
  const store: V1EnvVar = { name: 'STEVEDORE_ROOT', value: `${p.paths.workspace}/store` };
  const script = p.common({
    name: 'script',
    args: ['script', '--workdir', p.paths.source, '-c', spec.source.script?.inline ?? ''],
    env: [
      ...(spec.buildArgs ?? []).map((a) => ({ name: a.name, value: a.value })),
      store,
      { name: 'IMAGE', value: SCRIPT_IMAGE },
      { name: 'OUTPUT_IMAGE', value: spec.output.image },
    ],
    volumeMounts: p.workspaceMounts,
  });
  const push = p.common({
    name: 'build',
    args: [
      'buildah',
      'push',
      '--result-file',
      p.paths.terminationLog,
      ...p.authArgs,
      ...p.tls,
      ...(spec.output.compression ? ['--compression-format', spec.output.compression] : []),
      SCRIPT_IMAGE,
      `docker://${spec.output.image}`,
    ],
    env: [store],
    volumeMounts: [...p.workspaceMounts, ...p.authMounts],
  });
  return { script, push };
}
