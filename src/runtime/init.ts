import { access, constants } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { StevedoreError } from '../util/errors.js';

/** `--init` without an init binary on this host. */
export class InitUnavailableError extends StevedoreError {
  constructor(message: string) {
    super('INIT_UNAVAILABLE', message);
  }
}

/** Where podman's packages put catatonit, after $PATH. */
const KNOWN_PATHS = ['/usr/libexec/podman/catatonit', '/usr/libexec/catatonit/catatonit'];

/**
 * The init binary `run --init` mounts into the container: `explicit` (`--init-path`) when given,
 * else catatonit (podman's init) on $PATH or where podman's packages install it. It must be
 * statically linked: it runs inside the container's rootfs.
 */
export async function findInit(explicit?: string, path = process.env.PATH ?? ''): Promise<string> {
  const candidates = explicit
    ? [explicit]
    : [
        ...path
          .split(delimiter)
          .filter(Boolean)
          .map((d) => join(d, 'catatonit')),
        ...KNOWN_PATHS,
      ];
  for (const c of candidates) {
    if (
      await access(c, constants.X_OK).then(
        () => true,
        () => false,
      )
    )
      return c;
  }
  throw new InitUnavailableError(
    explicit
      ? `--init-path ${explicit}: not an executable file`
      : '--init needs catatonit (Debian package catatonit, installed by hack/install-deps.sh) or --init-path PATH to a static init binary',
  );
}
