/**
 * The build Pod of one ImageBuild generation: init containers put the source (and the merged
 * registry credentials) into emptyDirs, then the build container runs `stevedore build` and writes
 * its result to the termination message. Every security setting is here with its reason; docs/kubernetes.md
 * documents the same spec.
 */
import { createHash } from 'node:crypto';
import type { V1Container, V1Node, V1Pod, V1SecurityContext, V1Toleration, V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import { API_VERSION } from '../k8s/api/common.js';
import type { ImageBuild } from '../k8s/api/imagebuild.js';
import { cacheArgs } from './imagebuild-cache.js';
import { scriptContainers } from './imagebuild-pod-script.js';
import { parseDuration } from '../util/duration.js';
import { SOURCE_POLICY_ENV } from '../build/source-policy.js';

export const LABEL_BUILD = 'stevedore.dev/imagebuild';
export const LABEL_BUILD_UID = 'stevedore.dev/imagebuild-uid';
export const LABEL_GENERATION = 'stevedore.dev/generation';

/** Where things live inside the build Pod. */
export const PATHS = {
  workspace: '/workspace',
  source: '/workspace/source',
  home: '/workspace/home',
  tmp: '/tmp',
  authDir: '/var/run/stevedore/auth',
  authFile: '/var/run/stevedore/auth/config.json',
  secrets: '/var/run/stevedore/secrets',
  git: '/var/run/stevedore/git',
  signing: '/var/run/stevedore/signing',
  terminationLog: '/dev/termination-log',
} as const;

export interface BuildPodOptions {
  /** The Stevedore image the Pod runs; its entrypoint is `stevedore`. */
  image: string;
  imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
  /** `hostUsers: false`: run the Pod in its own user namespace (needs cluster support). */
  userNamespaces: boolean;
  /** The unprivileged uid/gid the Pod runs as. */
  runAsUser: number;
  /**
   * Seccomp profile of the Pod: RuntimeDefault, or Localhost with a profile that allows nested user
   * namespaces (the chart installs one: charts/stevedore/files/seccomp-builder.json). RUN steps need
   * the Localhost profile (or Unconfined): RuntimeDefault refuses unshare(CLONE_NEWUSER).
   */
  seccompProfile?: { type: 'RuntimeDefault' | 'Localhost' | 'Unconfined'; localhostProfile?: string };
  serviceAccountName?: string;
  imagePullSecrets?: string[];
  /** Extra arguments for `stevedore build` (e.g. --log-level). */
  extraBuildArgs?: string[];
  /**
   * The cache repository of an ImageBuild with `cache: {}` (no repository), `{namespace}` and
   * `{name}` replaced, e.g. `registry.example.com/cache/{namespace}/{name}`. Default: the output
   * repository followed by `/cache`.
   */
  cacheRepository?: string;
  /**
   * The administrator's BuildKit source policy (JSON text, checked at start-up), given to every
   * Containerfile build as STEVEDORE_SOURCE_POLICY. Script builds are refused while it is set: a
   * script picks its images itself, in shell code the tenant writes.
   */
  sourcePolicy?: string;
}

/** A Pod name for the generation: `<name>-build-<generation>[-<request hash>]`, shortened with a hash when too long for a hostname. */
export function buildPodName(name: string, generation: number, requestedAt?: string): string {
  // A rebuild asked for by annotation gets its own Pod (and a fresh name) within one generation.
  const again = requestedAt ? `-${createHash('sha256').update(requestedAt).digest('hex').slice(0, 5)}` : '';
  const suffix = `-build-${generation}${again}`;
  if (name.length + suffix.length <= 63) return `${name}${suffix}`;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 8);
  return `${name.slice(0, 63 - suffix.length - 9).replace(/[-.]+$/, '')}-${hash}${suffix}`;
}

/** Build timeout in seconds (spec.timeout, default 1h). */
export function buildTimeoutMs(ib: ImageBuild): number {
  return parseDuration(ib.spec.timeout ?? '1h');
}

function containerSecurity(readOnlyRoot: boolean): V1SecurityContext {
  return {
    // No setuid binary or file capability can raise the build's privileges.
    allowPrivilegeEscalation: false,
    privileged: false,
    // The builder needs no Linux capability: it writes layers as files and pushes over HTTP.
    capabilities: { drop: ['ALL'] },
    runAsNonRoot: true,
    // Writes go to the emptyDirs only; the image itself stays as it was pulled.
    readOnlyRootFilesystem: readOnlyRoot,
  };
}

function quantityMap(m: Record<string, string | number> | undefined): Record<string, string> | undefined {
  if (!m) return undefined;
  return Object.fromEntries(Object.entries(m).map(([k, v]) => [k, String(v)]));
}

/** Secret names the build needs, by the role they play (one volume file each). */
export function buildSecrets(ib: ImageBuild): { role: string; name: string }[] {
  const out: { role: string; name: string }[] = [];
  if (ib.spec.source.artifact?.credentials) out.push({ role: 'source', name: ib.spec.source.artifact.credentials.name });
  if (ib.spec.cache?.secret) out.push({ role: 'cache', name: ib.spec.cache.secret.name });
  if (ib.spec.output.pushSecret) out.push({ role: 'push', name: ib.spec.output.pushSecret.name });
  return out;
}

/** Keys of the signing Secret, as `cosign generate-key-pair k8s://NS/NAME` writes them. */
export const SIGNING_KEY = 'cosign.key';
export const SIGNING_PASSWORD = 'cosign.password';

/** `spec.sbom` and `spec.sbomFormat` as the builder's --sbom value, or undefined for none. */
export function sbomFormat(ib: ImageBuild): 'spdx-json' | 'cyclonedx-json' | undefined {
  if (!ib.spec.sbom) return undefined;
  return ib.spec.sbomFormat === 'cyclonedx' ? 'cyclonedx-json' : 'spdx-json';
}

/** `spec.provenance`, which defaults to true when a signing key is given. */
export function wantsProvenance(ib: ImageBuild): boolean {
  return ib.spec.provenance ?? ib.spec.signing !== undefined;
}

/** The source URI recorded in provenance: SLSA's `git+URL` (with no userinfo), or the artifact reference. */
export function provenanceSourceUri(ib: ImageBuild): string | undefined {
  const src = ib.spec.source;
  if (src.git) {
    const url = src.git.url.replace(/^(https?:\/\/|ssh:\/\/)[^/@]*@/, '$1');
    return `git+${url}`;
  }
  if (src.artifact) return `oci://${src.artifact.image}`;
  return undefined;
}

/** The build flags and mounts that sign the pushed image and attach its attestations. */
function signingArgs(ib: ImageBuild): { args: string[]; volume?: V1Volume; mount?: V1VolumeMount } {
  const signing = ib.spec.signing;
  if (!signing) return { args: [] };
  const args = ['--sign-key', `${PATHS.signing}/${SIGNING_KEY}`, '--sign-password-file', `${PATHS.signing}/${SIGNING_PASSWORD}`];
  const sbom = sbomFormat(ib);
  if (sbom) args.push('--sbom', sbom);
  if (wantsProvenance(ib)) {
    args.push('--provenance');
    const uri = provenanceSourceUri(ib);
    // The commit is the checked-out HEAD, which the builder reads from the Git work tree itself.
    if (uri) args.push('--source-uri', uri);
  }
  return {
    args,
    // A Secret volume lives in memory (tmpfs) on the node; only the build container mounts it,
    // and only these two keys are projected (not cosign.pub or anything else in the Secret).
    volume: {
      name: 'signing',
      secret: {
        secretName: signing.secretRef.name,
        defaultMode: 0o400,
        items: [
          { key: SIGNING_KEY, path: SIGNING_KEY },
          { key: SIGNING_PASSWORD, path: SIGNING_PASSWORD },
        ],
      },
    },
    mount: { name: 'signing', mountPath: PATHS.signing, readOnly: true },
  };
}

export function buildPod(ib: ImageBuild, o: BuildPodOptions, requestedAt?: string): V1Pod {
  const name = ib.metadata.name!;
  const ns = ib.metadata.namespace ?? 'default';
  const generation = ib.metadata.generation ?? 1;
  const spec = ib.spec;
  const src = spec.source;
  const resources = spec.resources
    ? {
        limits: quantityMap(spec.resources.limits as Record<string, string | number> | undefined),
        requests: quantityMap(spec.resources.requests as Record<string, string | number> | undefined),
      }
    : undefined;
  const env = [
    { name: 'HOME', value: PATHS.home },
    { name: 'TMPDIR', value: PATHS.tmp },
  ];
  const common = (c: V1Container): V1Container => ({
    image: o.image,
    imagePullPolicy: o.imagePullPolicy,
    workingDir: PATHS.workspace,
    securityContext: containerSecurity(true),
    // A step that dies before writing its result still leaves its last log lines as the message.
    terminationMessagePolicy: 'FallbackToLogsOnError',
    terminationMessagePath: PATHS.terminationLog,
    resources,
    ...c,
    env: [...env, ...(c.env ?? [])],
  });
  const workspaceMounts: V1VolumeMount[] = [
    { name: 'workspace', mountPath: PATHS.workspace },
    { name: 'tmp', mountPath: PATHS.tmp },
  ];

  const volumes: V1Volume[] = [
    // The source, the builder's layer store and HOME: scratch space that dies with the Pod.
    { name: 'workspace', emptyDir: {} },
    { name: 'tmp', emptyDir: {} },
  ];
  const initContainers: V1Container[] = [];

  // Registry credentials: each Secret's .dockerconfigjson becomes one file; the build and the
  // artifact fetch read one merged auth file from a memory-backed emptyDir (never on node disk).
  const secrets = buildSecrets(ib);
  if (secrets.length > 0) {
    volumes.push({
      name: 'registry-secrets',
      projected: {
        defaultMode: 0o400,
        sources: secrets.map((s) => ({ secret: { name: s.name, items: [{ key: '.dockerconfigjson', path: `${s.role}.json` }] } })),
      },
    });
    volumes.push({ name: 'auth', emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } });
    initContainers.push(
      common({
        name: 'auth',
        args: ['context', 'auth', PATHS.authFile, ...secrets.map((s) => `${PATHS.secrets}/${s.role}.json`)],
        volumeMounts: [...workspaceMounts, { name: 'registry-secrets', mountPath: PATHS.secrets, readOnly: true }, { name: 'auth', mountPath: PATHS.authDir }],
      }),
    );
  }
  const authMounts: V1VolumeMount[] = secrets.length > 0 ? [{ name: 'auth', mountPath: PATHS.authDir, readOnly: true }] : [];
  const authArgs = secrets.length > 0 ? ['--authfile', PATHS.authFile] : [];
  const tls = spec.output.insecure ? ['--tls-verify=false'] : [];

  /** A Containerfile build: the source step (Git, artifact or inline), then `stevedore build`. */
  const containerfileBuild = (): V1Container => {
    if (src.git) {
      const mounts: V1VolumeMount[] = [...workspaceMounts];
      const args = ['context', 'git', src.git.url, PATHS.source, '--result-file', PATHS.terminationLog];
      if (src.git.revision) args.push('--revision', src.git.revision);
      if (src.git.credentials) {
        volumes.push({ name: 'git-credentials', secret: { secretName: src.git.credentials.name, defaultMode: 0o400 } });
        mounts.push({ name: 'git-credentials', mountPath: PATHS.git, readOnly: true });
        args.push('--credentials-dir', PATHS.git);
      }
      initContainers.push(common({ name: 'source', args, volumeMounts: mounts }));
    } else if (src.artifact) {
      initContainers.push(
        common({
          name: 'source',
          args: ['context', 'fetch', src.artifact.image, PATHS.source, '--result-file', PATHS.terminationLog, ...authArgs, ...tls],
          volumeMounts: [...workspaceMounts, ...authMounts],
        }),
      );
    } else {
      initContainers.push(
        common({
          name: 'source',
          args: ['context', 'inline', PATHS.source, '--result-file', PATHS.terminationLog],
          env: [{ name: 'STEVEDORE_CONTAINERFILE', value: src.inline?.containerfile ?? '' }],
          volumeMounts: workspaceMounts,
        }),
      );
    }

    const contextDir = src.inline ? PATHS.source : `${PATHS.source}/${(spec.contextDir ?? '.').replace(/^\.\/?/, '').replace(/\/+$/, '')}`.replace(/\/$/, '');
    const buildArgs = ['build', '--tag', spec.output.image, '--result-file', PATHS.terminationLog, ...authArgs, ...tls];
    if (src.inline) buildArgs.push('--file', `${PATHS.source}/Containerfile`);
    else if (spec.containerfile) buildArgs.push('--file', `${contextDir}/${spec.containerfile}`);
    for (const a of spec.buildArgs ?? []) buildArgs.push('--build-arg', `${a.name}=${a.value}`);
    if (spec.target) buildArgs.push('--target', spec.target);
    if (spec.platforms?.length) buildArgs.push('--platform', spec.platforms.join(','));
    if (spec.output.compression) buildArgs.push('--compression-format', spec.output.compression);
    buildArgs.push(...cacheArgs(ib, o.cacheRepository));
    const sign = signingArgs(ib);
    buildArgs.push(...sign.args);
    if (sign.volume) volumes.push(sign.volume);
    buildArgs.push(...(o.extraBuildArgs ?? []), contextDir);

    return common({
      name: 'build',
      args: buildArgs,
      volumeMounts: [...workspaceMounts, ...authMounts, ...(sign.mount ? [sign.mount] : [])],
      ...(o.sourcePolicy ? { env: [{ name: SOURCE_POLICY_ENV, value: o.sourcePolicy }] } : {}),
    });
  };
  // RUN steps (and a script's `buildah run`) mount a new procfs for the step's container; the
  // kernel refuses that while the Pod's /proc has masked (over-mounted) paths. Unmasked is allowed
  // only with hostUsers: false, where that /proc belongs to the Pod's own user namespace, not to the node.
  const runsSteps = (c: V1Container): V1Container => (o.userNamespaces ? { ...c, securityContext: { ...c.securityContext, procMount: 'Unmasked' } } : c);
  let buildContainer: V1Container;
  if (src.script) {
    // A script build (imagebuild-pod-script.ts): the script runs without credentials, then the Pod pushes.
    const parts = scriptContainers(ib, { common, workspaceMounts, authMounts, authArgs, tls, paths: PATHS });
    initContainers.push(runsSteps(parts.script));
    buildContainer = parts.push;
  } else {
    buildContainer = runsSteps(containerfileBuild());
  }
  const timeoutSeconds = Math.ceil(buildTimeoutMs(ib) / 1000);
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: buildPodName(name, generation, requestedAt),
      namespace: ns,
      labels: {
        'app.kubernetes.io/name': 'stevedore',
        'app.kubernetes.io/component': 'build',
        'app.kubernetes.io/managed-by': 'stevedore',
        [LABEL_BUILD]: name.length <= 63 ? name : createHash('sha256').update(name).digest('hex').slice(0, 63),
        [LABEL_BUILD_UID]: ib.metadata.uid!,
        [LABEL_GENERATION]: String(generation),
      },
      annotations: { 'stevedore.dev/output-image': spec.output.image },
      ownerReferences: [{ apiVersion: API_VERSION, kind: 'ImageBuild', name, uid: ib.metadata.uid!, controller: true, blockOwnerDeletion: true }],
    },
    spec: {
      restartPolicy: 'Never',
      // The kubelet enforces the timeout too, should the controller be down when it passes.
      activeDeadlineSeconds: timeoutSeconds + 30,
      // Its own user namespace: uid 0 inside, if the builder ever needs it, is nobody on the node.
      hostUsers: !o.userNamespaces,
      // The build talks to registries only, never to the Kubernetes API.
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      serviceAccountName: o.serviceAccountName,
      imagePullSecrets: o.imagePullSecrets?.map((n) => ({ name: n })),
      securityContext: {
        runAsNonRoot: true,
        runAsUser: o.runAsUser,
        runAsGroup: o.runAsUser,
        fsGroup: o.runAsUser,
        seccompProfile: o.seccompProfile ?? { type: 'RuntimeDefault' },
      },
      nodeSelector: spec.nodeSelector,
      tolerations: spec.tolerations as V1Toleration[] | undefined,
      initContainers,
      containers: [buildContainer],
      volumes,
    },
  };
}

/**
 * Whether a build Pod with `hostUsers: false` can run anywhere it may be scheduled, from what the
 * kubelets report (Node status.runtimeHandlers[].features.userNamespaces, Kubernetes >= 1.30).
 * `false` only when every candidate node reports its handlers and none supports user namespaces:
 * the kubelet would refuse the Pod's sandbox and the build would wait for ever. `undefined` when
 * unknown (no candidate node, or a node too old to report): the Pod is created as usual.
 */
export function userNamespaceSupport(nodes: readonly V1Node[], nodeSelector?: Record<string, string>): { supported: boolean | undefined; message: string } {
  const candidates = nodes.filter((n) => Object.entries(nodeSelector ?? {}).every(([k, v]) => n.metadata?.labels?.[k] === v));
  if (candidates.length === 0) return { supported: undefined, message: 'no candidate node' };
  const without: string[] = [];
  for (const n of candidates) {
    const handlers = n.status?.runtimeHandlers;
    if (!handlers) return { supported: undefined, message: `node ${n.metadata?.name} reports no runtime handlers` };
    // The default handler (name "") is what a Pod without runtimeClassName uses.
    const def = handlers.find((h) => (h.name ?? '') === '');
    if (def?.features?.userNamespaces === true) return { supported: true, message: `node ${n.metadata?.name} supports user namespaces` };
    without.push(n.metadata?.name ?? '?');
  }
  const listed = without.length > 5 ? `${without.slice(0, 5).join(', ')} and ${without.length - 5} more` : without.join(', ');
  return {
    supported: false,
    message:
      `no node can run the build Pod with hostUsers: false: the container runtime of ${listed} reports no user-namespace support ` +
      '(needs containerd >= 2.0 or CRI-O >= 1.25, with runc >= 1.2 or crun >= 1.9, and Linux >= 6.3); ' +
      "upgrade the nodes' runtime, or set buildPods.userNamespaces=false in the chart (then only Containerfiles without RUN steps build)",
  };
}
