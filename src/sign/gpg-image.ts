import type { PrivateKey } from 'openpgp';
import type { Digest } from '../oci/digest.js';
import { formatReference, type ImageReference } from '../oci/reference.js';
import { registryClientFor } from '../transports/docker.js';
import type { TransportContext } from '../transports/types.js';
import { rootLogger } from '../util/log.js';
import { createGpgSignature } from './gpg.js';
import { writeLookasideSignature } from './lookaside.js';
import { loadRegistriesD, type RegistriesD } from './registries-d.js';
import { resolveSubject } from './sign.js';

export interface GpgSignImageOptions {
  /** The identity to sign (skopeo's --sign-identity); default the reference itself (`:latest` when it has no tag). */
  identity?: string;
  /** The manifest digest to sign, when the caller knows it (a copy just wrote it); else read by HEAD. */
  digest?: Digest;
  /** registries.d directory; default the context's, else where containers/image looks. */
  registriesDir?: string;
  /** A file:// URL or path that replaces the configured lookaside-staging (podman image sign --directory). */
  directory?: string;
  context?: TransportContext;
  signal?: AbortSignal;
}

/** The docker-reference containers/image signs for a registry destination: tag-less means `:latest`. */
export function gpgIdentityOf(ref: ImageReference): string {
  return formatReference(ref.tag || ref.digest ? ref : { ...ref, tag: 'latest' });
}

/**
 * GPG-signs the manifest a registry reference names and stores the signature in lookaside
 * staging (registries.d), as `skopeo copy --sign-by` and `podman image sign` do. The registry
 * itself is not written to. Returns where the signature went.
 */
export async function signImageWithGpg(
  ref: ImageReference,
  key: PrivateKey,
  opts: GpgSignImageOptions = {},
): Promise<{ digest: Digest; identity: string; location: string }> {
  let digest = opts.digest;
  if (!digest) {
    const client = registryClientFor(ref, opts.context);
    try {
      digest = (await resolveSubject(client, ref, opts.signal)).digest;
    } finally {
      await client.close();
    }
  }
  const identity = opts.identity ?? gpgIdentityOf(ref);
  let config: RegistriesD;
  if (opts.directory) {
    const url = opts.directory.includes('://') ? opts.directory : `file://${opts.directory}`;
    config = { dir: '(--directory)', docker: {}, defaultDocker: { lookasideStaging: url } };
  } else {
    config = await loadRegistriesD(opts.registriesDir ?? opts.context?.registriesDir);
  }
  const signature = await createGpgSignature(key, identity, digest);
  const location = await writeLookasideSignature(config, ref, digest, signature);
  rootLogger.info({ ref: formatReference(ref), digest, identity, location }, 'image signed with GPG');
  return { digest, identity, location };
}
