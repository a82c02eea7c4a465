import { mkdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { PrivateKey } from 'openpgp';
import type { Digest } from '../oci/digest.js';
import { DirReference } from '../transports/dir.js';
import { DockerReference } from '../transports/docker.js';
import type { TransportContext, TransportReference } from '../transports/types.js';
import { UnsupportedError } from '../util/errors.js';
import { withFileLock, writeFileAtomic } from '../util/fs.js';
import { createGpgSignature } from './gpg.js';
import { gpgIdentityOf, signImageWithGpg } from './gpg-image.js';

/** A signer ready before a copy starts, so a copy is never made that cannot then be signed. */
export interface CopySigner {
  /** Signs the manifest the copy wrote; returns where the signature went. */
  sign(digest: Digest, signal?: AbortSignal): Promise<string>;
}

/**
 * `copy --sign-by`: checks, before anything is copied, that the destination can hold GPG
 * signatures (a registry, through lookaside-staging; a `dir:` image, as signature-N files, as
 * containers/image does) and returns the signer the copy calls with the written digest.
 * `identity` is skopeo's --sign-identity (default the destination reference).
 */
export function gpgCopySigner(dest: TransportReference, key: PrivateKey, opts: { identity?: string; context?: TransportContext } = {}): CopySigner {
  if (dest instanceof DockerReference) {
    return {
      sign: async (digest, signal) => (await signImageWithGpg(dest.ref, key, { digest, identity: opts.identity, context: opts.context, signal })).location,
    };
  }
  if (dest instanceof DirReference) {
    if (!opts.identity) throw new UnsupportedError(`signing ${dest.toString()} needs --sign-identity (a dir: image has no registry name to sign)`);
    const identity = opts.identity;
    const dir = resolve(dest.path);
    return {
      async sign(digest) {
        const signature = await createGpgSignature(key, identity, digest);
        await mkdir(dir, { recursive: true });
        return withFileLock(join(dir, '.signature.lock'), async () => {
          for (let i = 1; ; i++) {
            const path = join(dir, `signature-${i}`);
            const existing = await readFile(path).catch(() => undefined);
            if (existing) continue;
            await writeFileAtomic(path, signature);
            return path;
          }
        });
      },
    };
  }
  throw new UnsupportedError(`cannot store GPG signatures in ${dest.toString()}: only docker:// (lookaside) and dir: destinations hold them`);
}

export { gpgIdentityOf };
