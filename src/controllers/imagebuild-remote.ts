/**
 * `stevedore build --remote`: build on the cluster from a local directory, as Shipwright's local
 * source upload does. The context is packed (honouring .containerignore) and pushed as an OCI
 * artifact, an ImageBuild is created that builds from that artifact by digest, its status is
 * followed and printed as it changes, and the outcome comes back as the exit status. Interrupting
 * (SIGINT/SIGTERM) deletes the ImageBuild, which cancels the build.
 */
import { basename, resolve } from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import { pushContext } from '../build/remote/artifact.js';
import { loadContextIgnore } from '../build/remote/ignore.js';
import { API_VERSION } from '../k8s/api/common.js';
import type { ImageBuild } from '../k8s/api/imagebuild.js';
import { KubeClient, isNotFound, resourcePath } from '../k8s/runtime/client.js';
import { parseReference } from '../oci/reference.js';
import type { TransportContext } from '../transports/types.js';
import { InvalidInputError } from '../util/errors.js';
import { IMAGE_BUILD_RESOURCE } from './imagebuild.js';

export interface RemoteBuildOptions {
  contextDir: string;
  /** Containerfile path relative to the context. */
  containerfile?: string;
  /** Output image (registry/repo:tag). */
  image: string;
  kubeConfig: KubeConfig;
  namespace: string;
  /** Repository for the context artifact; default `<output repository>-context` on the same registry. */
  contextRepository?: string;
  buildArgs?: Record<string, string>;
  target?: string;
  platforms?: string[];
  timeout?: string;
  /** dockerconfigjson Secret (in `namespace`) for pushing the image and pulling the context. */
  pushSecret?: string;
  /** Plain HTTP / unverified TLS for the output registry (test registries). */
  insecure?: boolean;
  /** Credentials and TLS for pushing the context from here. */
  registry?: TransportContext;
  /** Progress lines (status changes). */
  print: (line: string) => void;
  signal?: AbortSignal;
  pollMs?: number;
}

export interface RemoteBuildResult {
  name: string;
  ready: boolean;
  reason: string;
  message: string;
  digest?: string;
  status?: ImageBuild['status'];
}

/** A Kubernetes name from a directory name: lowercase, DNS-1123, at most 40 characters. */
function nameFrom(dir: string): string {
  const n = basename(resolve(dir))
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40)
    .replace(/-+$/, '');
  return n || 'build';
}

export async function remoteBuild(o: RemoteBuildOptions): Promise<RemoteBuildResult> {
  const out = parseReference(o.image);
  if (!out.tag && !out.digest) throw new InvalidInputError(`--remote needs a tag on the output image, e.g. ${o.image}:latest`);
  const contextRepo = o.contextRepository ?? `${out.registry}/${out.repository}-context`;
  o.print(`packing ${o.contextDir} and pushing it to ${contextRepo}`);
  const ignore = await loadContextIgnore(o.contextDir, o.containerfile);
  const pushed = await pushContext(o.contextDir, `${contextRepo}:build-context`, {
    ignore,
    keep: o.containerfile ? [o.containerfile] : [],
    ctx: o.registry,
    signal: o.signal,
  });
  o.print(`context ${pushed.reference} (${pushed.files} files, ${pushed.size} bytes${pushed.reused ? ', already there' : ''})`);

  const client = new KubeClient(o.kubeConfig);
  const spec: ImageBuild['spec'] = {
    source: { artifact: { image: pushed.reference, ...(o.pushSecret ? { credentials: { name: o.pushSecret } } : {}) } },
    output: { image: o.image, ...(o.pushSecret ? { pushSecret: { name: o.pushSecret } } : {}), ...(o.insecure ? { insecure: true } : {}) },
    ...(o.containerfile ? { containerfile: o.containerfile } : {}),
    ...(o.buildArgs && Object.keys(o.buildArgs).length ? { buildArgs: Object.entries(o.buildArgs).map(([name, value]) => ({ name, value })) } : {}),
    ...(o.target ? { target: o.target } : {}),
    ...(o.platforms?.length ? { platforms: o.platforms } : {}),
    ...(o.timeout ? { timeout: o.timeout } : {}),
  };
  const created = await client.create<ImageBuild>(resourcePath(IMAGE_BUILD_RESOURCE, o.namespace), {
    apiVersion: API_VERSION,
    kind: 'ImageBuild',
    metadata: { generateName: `${nameFrom(o.contextDir)}-`, namespace: o.namespace, labels: { 'stevedore.dev/remote-build': 'true' } },
    spec,
  });
  const name = created.metadata.name!;
  const path = resourcePath(IMAGE_BUILD_RESOURCE, o.namespace, name);
  o.print(`created ImageBuild ${o.namespace}/${name}`);

  const cancel = async () => {
    try {
      await client.json('DELETE', path);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  };
  let last = '';
  try {
    for (;;) {
      if (o.signal?.aborted) {
        await cancel();
        o.print(`canceled: ImageBuild ${o.namespace}/${name} deleted`);
        return { name, ready: false, reason: 'Canceled', message: 'interrupted; the ImageBuild was deleted' };
      }
      let ib: ImageBuild;
      try {
        ib = await client.get<ImageBuild>(path);
      } catch (err) {
        if (isNotFound(err)) return { name, ready: false, reason: 'Canceled', message: `ImageBuild ${o.namespace}/${name} was deleted` };
        throw err;
      }
      const ready = ib.status?.conditions?.find((c) => c.type === 'Ready');
      const gen = ib.metadata.generation;
      if (ready && ready.observedGeneration === gen) {
        const line = `${ready.reason}: ${ready.message}`;
        if (line !== last) o.print(line);
        last = line;
        if (ready.status === 'True')
          return { name, ready: true, reason: ready.reason, message: ready.message, digest: ib.status?.imageDigest, status: ib.status };
        if (ib.status?.conditions?.some((c) => c.type === 'Stalled' && c.status === 'True')) {
          return { name, ready: false, reason: ready.reason, message: ready.message, status: ib.status };
        }
      }
      await new Promise<void>((r) => {
        const t = setTimeout(r, o.pollMs ?? 1000);
        o.signal?.addEventListener('abort', () => (clearTimeout(t), r()), { once: true });
      });
    }
  } catch (err) {
    if (o.signal?.aborted) await cancel().catch(() => undefined);
    throw err;
  }
}
