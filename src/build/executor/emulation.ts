import { access } from 'node:fs/promises';
import { formatPlatform, hostPlatform, normalizePlatform, type Platform } from '../../oci/platform.js';

/** qemu-user names of OCI architectures (binfmt_misc entries are `qemu-<name>`). */
const QEMU_NAMES: Record<string, string> = {
  arm64: 'aarch64',
  arm: 'arm',
  amd64: 'x86_64',
  '386': 'i386',
  ppc64le: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
  mips64le: 'mips64el',
};

/**
 * Whether a RUN for `platform` can execute here: natively, or through a qemu-user interpreter
 * registered with binfmt_misc (Debian's qemu-user-static with binfmt-support). Returns the reason
 * when it cannot, for the step's error message.
 */
export async function emulationProblem(platform: Platform, binfmtDir = '/proc/sys/fs/binfmt_misc'): Promise<string | undefined> {
  const want = normalizePlatform(platform);
  const host = hostPlatform();
  if (want.os === host.os && want.architecture === host.architecture) return undefined;
  const qemu = QEMU_NAMES[want.architecture];
  if (
    qemu &&
    (await access(`${binfmtDir}/qemu-${qemu}`).then(
      () => true,
      () => false,
    ))
  )
    return undefined;
  return (
    `RUN for ${formatPlatform(want)} on this ${formatPlatform(host)} host needs qemu-user emulation registered with binfmt_misc ` +
    `(${binfmtDir}/qemu-${qemu ?? want.architecture} is missing; on Debian install qemu-user-static and binfmt-support). ` +
    `Stages without RUN need no emulation.`
  );
}
