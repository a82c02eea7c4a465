import { parseConfig } from '../../oci/config.js';
import type { Digest } from '../../oci/digest.js';
import { parseManifest } from '../../oci/manifest.js';
import { formatPlatform, type Platform } from '../../oci/platform.js';
import { chainIds } from '../../runtime/store/chainid.js';
import type { ImageStore, PullPolicy, StoredImage } from '../../runtime/store/index.js';
import { normaliseImageName } from '../../runtime/store/names.js';
import type { TransportContext } from '../../transports/types.js';
import { NotFoundError } from '../../util/errors.js';

/**
 * A base image for a platform other than the host's (the runtime's store pulls the host's only).
 * The one platform's image is copied into the store's layout under `<store name>@<os>-<arch>[-variant]`,
 * so it never replaces the host's image of the same name, and read back as a StoredImage.
 */
export async function pullForPlatform(
  store: ImageStore,
  ref: string,
  platform: Platform,
  opts: { policy: PullPolicy; context?: TransportContext; signal?: AbortSignal },
): Promise<StoredImage> {
  const { storeName, source } = normaliseImageName(ref);
  const refName = `${storeName}@${formatPlatform(platform).replaceAll('/', '-')}`;
  const read = async (): Promise<StoredImage> => {
    const desc = await store.layout.resolve(refName);
    const parsed = parseManifest(await store.layout.readBlob(desc.digest), desc.mediaType);
    if (parsed.kind !== 'image') throw new NotFoundError(`${refName}: not an image manifest`);
    const config = parseConfig(await store.layout.readBlob(parsed.manifest.config.digest));
    return {
      name: refName,
      digest: desc.digest,
      manifest: parsed.manifest,
      config,
      configDigest: parsed.manifest.config.digest,
      chainIds: chainIds(config.rootfs.diff_ids) as Digest[],
    };
  };
  if (opts.policy !== 'always') {
    const have = await read().catch(() => undefined);
    if (have) return have;
    if (opts.policy === 'never') throw new NotFoundError(`image ${refName}: not in the local store and --pull=never`);
  }
  const [{ copyReference }, { parseImageName }, { OciReference }] = await Promise.all([
    import('../../copy/copy.js'),
    import('../../transports/index.js'),
    import('../../transports/oci.js'),
  ]);
  await copyReference(parseImageName(source), new OciReference(store.imagesDir, refName), {
    platforms: [platform],
    ...(opts.context ? { srcContext: opts.context } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  return read();
}
