/**
 * The digests a build's FROM images resolved to, for whoever rebuilds when one moves (the ImageBuild
 * controller reads them from the build Pod's result: it cannot read the FROM lines of a Git or
 * artifact source itself). Each registry base named by tag gets one HEAD request (nothing is
 * downloaded), sent before the pull: a tag that moves between the two is reported with its older
 * digest, so the watcher sees it move and builds once more, never the reverse.
 */
import { parseReference, referenceTarget } from '../../oci/reference.js';
import { headManifest } from '../../registry/manifests.js';
import { normaliseImageName } from '../../runtime/store/names.js';
import { registryClientFor } from '../../transports/docker.js';
import type { TransportContext } from '../../transports/types.js';
import { rootLogger } from '../../util/log.js';

export interface BaseImageDigest {
  /** The image as the FROM line named it (build args applied; a source policy's conversion applied). */
  name: string;
  /** What the name resolved to: the manifest or index digest the registry serves for it now. */
  digest: string;
}

const log = rootLogger.child({ component: 'build-bases' });

/**
 * A registry base's digest by a HEAD request, or undefined: not a registry image, pinned by digest
 * (it cannot move), or the registry did not answer (the pull reports real trouble; a missing digest
 * only means nothing is watched).
 */
export async function resolveBaseDigest(ref: string, ctx: TransportContext = {}, signal?: AbortSignal): Promise<BaseImageDigest | undefined> {
  let name: string;
  try {
    const { source } = normaliseImageName(ref);
    if (!source.startsWith('docker://')) return undefined;
    name = ref.replace(/^docker:\/\//, '');
  } catch {
    return undefined;
  }
  const parsed = parseReference(name);
  if (parsed.digest) return undefined;
  const client = registryClientFor(parsed, ctx);
  try {
    const head = await headManifest(client, parsed.repository, referenceTarget(parsed), signal ? { signal } : {});
    return head ? { name, digest: head.digest } : undefined;
  } catch (err) {
    log.debug({ image: name, err: (err as Error)?.message }, 'base image digest not resolved');
    return undefined;
  } finally {
    await client.close();
  }
}
