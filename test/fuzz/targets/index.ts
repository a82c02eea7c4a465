import type { FuzzTarget } from '../lib/target.js';
import { authConfigTarget } from './auth-config.js';
import { containerfileTarget } from './containerfile.js';
import { cosignKeyTarget } from './cosign-key.js';
import { dockerignoreTarget } from './dockerignore.js';
import { goBuildinfoTarget } from './go-buildinfo.js';
import { imageConfigTarget } from './image-config.js';
import { manifestTarget } from './manifest.js';
import { policyTarget } from './policy.js';
import { referenceTarget } from './reference.js';
import { apkTarget, dpkgTarget, npmTarget, pythonTarget } from './sbom.js';
import { sigstoreBundleTarget } from './sigstore-bundle.js';
import { syncConfigTarget } from './sync-config.js';
import { tarUnpackTarget } from './tar-unpack.js';
import { wwwAuthenticateTarget } from './www-authenticate.js';

/** Every fuzz target, one per parser of untrusted input (docs/fuzzing.md lists their contracts). */
export const TARGETS: readonly FuzzTarget[] = [
  containerfileTarget,
  dockerignoreTarget,
  manifestTarget,
  imageConfigTarget,
  tarUnpackTarget,
  policyTarget,
  syncConfigTarget,
  referenceTarget,
  authConfigTarget,
  cosignKeyTarget,
  sigstoreBundleTarget,
  wwwAuthenticateTarget,
  dpkgTarget,
  apkTarget,
  npmTarget,
  pythonTarget,
  goBuildinfoTarget,
];

export function targetNamed(name: string): FuzzTarget {
  const t = TARGETS.find((x) => x.name === name);
  if (!t) throw new Error(`no fuzz target "${name}" (have: ${TARGETS.map((x) => x.name).join(', ')})`);
  return t;
}
