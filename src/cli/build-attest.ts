/**
 * What `stevedore build --sign-key/--sbom/--provenance` does after the push: sign the pushed digest
 * (cosign's `.sig` tag), attach the SBOM and SLSA provenance as signed DSSE attestations, and
 * summarise both for the CLI output and the `--result-file` (the ImageBuild's termination message).
 * The signing key is loaded before the build, so a wrong key or password costs no build.
 */
import { execFile } from 'node:child_process';
import { createHash, type KeyObject } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { basename, join, relative, resolve, sep } from 'node:path';
import { promisify } from 'node:util';
import { attachBuildAttestations, type AttachmentSummary } from '../attest/index.js';
import type { Digest } from '../oci/digest.js';
import { formatReference, type ImageReference } from '../oci/reference.js';
import { headManifest } from '../registry/manifests.js';
import type { SbomFormat } from '../sbom/index.js';
import { loadPrivateKey } from '../sign/keys.js';
import { signImage } from '../sign/sign.js';
import { attachmentTag } from '../registry/referrers.js';
import { DockerReference, registryClientFor } from '../transports/docker.js';
import type { TransportContext } from '../transports/types.js';
import { InvalidInputError } from '../util/errors.js';

export interface BuildAttestFlags {
  signKey?: string;
  signPasswordFile?: string;
  sbom?: string;
  provenance?: boolean;
  sourceUri?: string;
  sourceRevision?: string;
}

/** What the build asked for, checked and loaded before the build runs. */
export interface AttestPlan {
  key: KeyObject;
  sbom: SbomFormat | false;
  provenance?: { source?: { uri: string; commit?: string }; containerfile: { path: string; digest: Digest } };
}

/** One line of the result file's `attestations` list (and of ImageBuild `status.attestations`). */
export interface AttestationRecord {
  kind: AttachmentSummary['kind'];
  predicateType: string;
  /** The referrer manifest (what `stevedore verify-attestation` and the referrers API find). */
  digest?: string;
  /** The image manifest it is about (a platform's image for an index's SBOM). */
  subject: string;
  envelope: string;
}

export interface SignatureRecord {
  /** The `sha256-<hex>.sig` manifest holding the simple-signing signature. */
  digest: string;
  tag: string;
}

const SBOM_FORMATS: Record<string, SbomFormat> = {
  'spdx-json': 'spdx-json',
  spdx: 'spdx-json',
  'cyclonedx-json': 'cyclonedx-json',
  cyclonedx: 'cyclonedx-json',
};

const run = promisify(execFile);

/** The HEAD commit of a Git work tree at or above `dir`, or undefined (not a work tree, no git). */
async function gitHead(dir: string): Promise<string | undefined> {
  try {
    // safe.directory: the checkout may belong to another uid (an init container, a volume's fsGroup).
    const { stdout } = await run('git', ['-c', 'safe.directory=*', '-C', dir, 'rev-parse', 'HEAD'], { timeout: 10_000 });
    const sha = stdout.trim();
    return /^[0-9a-f]{40,64}$/.test(sha) ? sha : undefined;
  } catch {
    return undefined;
  }
}

/** The Containerfile the build will read, as the builder finds it: -f, else Containerfile, else Dockerfile in a directory context. */
async function containerfileOf(context: string, file: string | undefined): Promise<{ path: string; abs: string }> {
  const dir = resolve(context);
  const isDir = await stat(dir).then(
    (s) => s.isDirectory(),
    () => false,
  );
  if (file !== undefined) {
    const abs = resolve(file);
    const rel = isDir ? relative(dir, abs) : '';
    return { abs, path: rel && !rel.startsWith('..') && !rel.startsWith(sep) ? rel : basename(abs) };
  }
  if (!isDir) throw new InvalidInputError(`--provenance records the Containerfile's digest: name it with -f when the context (${context}) is not a directory`);
  for (const name of ['Containerfile', 'Dockerfile']) {
    const abs = join(dir, name);
    if (
      await stat(abs).then(
        (s) => s.isFile(),
        () => false,
      )
    )
      return { abs, path: name };
  }
  throw new InvalidInputError(`no Containerfile or Dockerfile in the context ${context}; name one with -f`);
}

/**
 * Checks the flags and loads the key. Undefined when nothing is to be signed or attached. The
 * attest library signs every attestation, so an SBOM or provenance without a key is refused here.
 */
export async function planAttestations(o: BuildAttestFlags, context: string, file: string | undefined): Promise<AttestPlan | undefined> {
  let sbom: SbomFormat | false = false;
  if (o.sbom !== undefined) {
    const f = SBOM_FORMATS[o.sbom];
    if (!f) throw new InvalidInputError(`--sbom must be spdx-json or cyclonedx-json, got "${o.sbom}"`);
    sbom = f;
  }
  if ((o.sourceUri !== undefined || o.sourceRevision !== undefined) && !o.provenance) {
    throw new InvalidInputError('--source-uri and --source-revision describe the source in the provenance: add --provenance');
  }
  if (o.sourceRevision !== undefined && o.sourceUri === undefined)
    throw new InvalidInputError('--source-revision needs --source-uri (the repository it is a commit of)');
  if (!o.signKey) {
    if (sbom || o.provenance) {
      throw new InvalidInputError(
        `${sbom ? '--sbom' : '--provenance'} attaches a signed attestation: give --sign-key (cosign.key or a PKCS#8 PEM); unsigned SBOM referrers are not supported`,
      );
    }
    if (o.signPasswordFile !== undefined) throw new InvalidInputError('--sign-password-file needs --sign-key');
    return undefined;
  }
  let password: string | undefined;
  if (o.signPasswordFile !== undefined) {
    // A Secret file often ends with a newline that is not part of the password.
    password = (
      await readFile(o.signPasswordFile, 'utf8').catch((err: unknown) => {
        throw new InvalidInputError(`reading --sign-password-file ${o.signPasswordFile}: ${(err as Error).message}`);
      })
    ).replace(/\r?\n$/, '');
  }
  const key = await loadPrivateKey(o.signKey, password);
  const plan: AttestPlan = { key, sbom };
  if (o.provenance) {
    const cf = await containerfileOf(context, file);
    const bytes = await readFile(cf.abs).catch((err: unknown) => {
      throw new InvalidInputError(`reading the Containerfile ${cf.abs}: ${(err as Error).message}`);
    });
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}` as Digest;
    let source: { uri: string; commit?: string } | undefined;
    if (o.sourceUri !== undefined) {
      // Only a git+ source has a commit; an artifact context may carry a .git that is not its source.
      const commit = o.sourceRevision ?? (o.sourceUri.startsWith('git+') ? await gitHead(resolve(context)) : undefined);
      source = { uri: o.sourceUri, ...(commit ? { commit } : {}) };
    }
    plan.provenance = { ...(source ? { source } : {}), containerfile: { path: cf.path, digest } };
  }
  return plan;
}

export interface AttestInputs {
  /** The pushed registry image (the first pushed -t). */
  ref: ImageReference;
  digest: Digest;
  ctx: TransportContext;
  buildArgs: Record<string, string>;
  target?: string;
  platforms: string[];
  /** The platform whose image an index's SBOM describes. */
  platform: string;
  builderVersion: string;
  startedOn: Date;
  signal?: AbortSignal;
}

/** Signs the pushed digest, then attaches what the plan asks for. */
export async function signAndAttest(plan: AttestPlan, i: AttestInputs): Promise<{ signature: SignatureRecord; attestations: AttestationRecord[] }> {
  const pinned: ImageReference = { registry: i.ref.registry, repository: i.ref.repository, digest: i.digest };
  const signed = await signImage(pinned, plan.key, { formats: ['simple'], context: i.ctx, ...(i.signal ? { signal: i.signal } : {}) });
  const tag = attachmentTag(signed.digest, 'sig');
  const client = registryClientFor(pinned, i.ctx);
  let sigDigest: string;
  try {
    const head = await headManifest(client, pinned.repository, tag, i.signal ? { signal: i.signal } : {});
    if (!head) throw new InvalidInputError(`the signature tag ${tag} is not in ${pinned.registry}/${pinned.repository} after signing`);
    sigDigest = head.digest;
  } finally {
    await client.close();
  }
  const summaries =
    plan.sbom || plan.provenance
      ? await attachBuildAttestations(`docker://${formatReference(pinned)}`, i.digest, {
          key: plan.key,
          ctx: i.ctx,
          sbom: plan.sbom,
          platform: i.platform,
          ...(i.signal ? { signal: i.signal } : {}),
          ...(plan.provenance
            ? {
                provenance: {
                  ...(plan.provenance.source ? { source: plan.provenance.source } : {}),
                  containerfile: plan.provenance.containerfile,
                  buildArgs: i.buildArgs,
                  ...(i.target ? { target: i.target } : {}),
                  platforms: i.platforms,
                  builder: { version: i.builderVersion },
                  startedOn: i.startedOn,
                  finishedOn: new Date(),
                },
              }
            : {}),
        })
      : [];
  return {
    signature: { digest: sigDigest, tag },
    attestations: summaries.map((s) => ({
      kind: s.kind,
      predicateType: s.predicateType,
      ...(s.referrer ? { digest: s.referrer } : {}),
      subject: s.subject,
      envelope: s.envelope,
    })),
  };
}

/** The pushed registry reference among the build's destinations (the first), for signing. */
export function pushedReference(dests: readonly { kind: string; ref?: unknown }[]): ImageReference | undefined {
  for (const d of dests) if (d.kind === 'push' && d.ref instanceof DockerReference) return d.ref.ref;
  return undefined;
}
