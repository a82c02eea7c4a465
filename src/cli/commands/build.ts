import { resolve } from 'node:path';
import type { Command } from 'commander';
import { ContainerfileError } from '../../build/containerfile/index.js';
import {
  buildImage,
  BuildInterruptedError,
  BuildStepError,
  PushFailedError,
  SourceNotFoundError,
  textReporter,
  parseDestination,
  writeResultFile,
  buildMetadata,
  type BuildSuccess,
  type FailureReason,
} from '../../build/index.js';
import { RESULT_FILE_LIMIT } from '../../build/output/result-file.js';
import type { Digest } from '../../oci/digest.js';
import { SILENT_REPORTER } from '../../build/executor/types.js';
import { needsUserNamespace, reexecInUserNamespace } from '../../runtime/rootless.js';
import { ImageStore } from '../../runtime/store/index.js';
import { InvalidInputError, StevedoreError } from '../../util/errors.js';
import { writeFileAtomic } from '../../util/fs.js';
import { VERSION } from '../../util/version.js';
import { EXIT_TOOL_ERROR, exitWith } from '../exit-codes.js';
import type { AttestationRecord, SignatureRecord } from '../build-attest.js';
import { collect, contextFrom, parseBool } from '../options.js';
import { signalOnInterrupt } from '../signals.js';
import { acceptGoBools, keyValues, optionsFromFlags, type BuildFlags } from '../build-flags.js';

// A build does thousands of small file operations at once (hashing, layer writing, snapshots):
// libuv's default 4 threads queue them. Set by the command, not the engine: it is process-wide,
// and takes effect because the pool starts on its first use, after this module is loaded.
process.env.UV_THREADPOOL_SIZE ??= '16';

/**
 * A build step failed: a RUN's own exit code passes through (as buildah 1.28: `RUN exit 7` exits 7),
 * a COPY or a RUN without a code exits 1. Tool errors are 125.
 */
export const EXIT_STEP_FAILED = 1;

function stepExitCode(err: unknown): number {
  const code = err instanceof BuildStepError ? err.exitCode : undefined;
  return code !== undefined && Number.isInteger(code) && code > 0 && code < 256 ? code : EXIT_STEP_FAILED;
}

/** The image was built (and pushed) but not signed or attested: the build has not done what was asked. */
class AttestationFailedError extends StevedoreError {
  constructor(message: string, cause?: unknown) {
    super('ATTESTATION_FAILED', message, cause === undefined ? undefined : { cause });
  }
}

/**
 * The result document with the signature and attestation digests. Kept under the 4096-byte
 * termination-message limit by dropping, in turn, the per-attestation subject and envelope
 * digests, then the per-platform list; the attestation referrer digests always stay.
 */
function withAttestations(doc: BuildSuccess, signed: { signature: SignatureRecord; attestations: AttestationRecord[] }): BuildSuccess {
  const full = { ...doc, signatureDigest: signed.signature.digest, attestations: signed.attestations };
  const fits = (d: object) => Buffer.byteLength(JSON.stringify(d)) <= RESULT_FILE_LIMIT;
  if (fits(full)) return full;
  const short = { ...full, attestations: signed.attestations.map((a) => ({ kind: a.kind, predicateType: a.predicateType, digest: a.digest ?? a.envelope })) };
  if (fits(short)) return short;
  return { ...short, platforms: [], image: doc.image.slice(0, 512) };
}

function failureReason(err: unknown, aborted: boolean): FailureReason {
  if (aborted || err instanceof BuildInterruptedError) return 'Interrupted';
  // Not in the builder's FailureReason list (src/build/output): a reason of this command's own.
  if (err instanceof AttestationFailedError) return 'AttestationFailed';
  if (err instanceof ContainerfileError) return 'InvalidContainerfile';
  if (err instanceof BuildStepError) return 'BuildStepFailed';
  if (err instanceof SourceNotFoundError) return 'SourceNotFound';
  if (err instanceof PushFailedError) return 'PushFailed';
  return 'Error';
}

/** The flags `build --remote` passes on to the ImageBuild (context.ts RemoteBuildFlags). */
const REMOTE_FLAGS = new Set([
  'remote',
  'file',
  'tag',
  'target',
  'buildArg',
  'platform',
  'tlsVerify',
  'creds',
  'authfile',
  'kubeconfig',
  'namespace',
  'contextRepo',
  'pushSecret',
  'timeout',
  'quiet',
]);

export function registerBuild(program: Command): void {
  acceptGoBools(program.command('build'))
    .alias('bud')
    .description('build an image from a Containerfile (like buildah bud): push it, write a layout, or keep it in the local store')
    .argument(
      '[context]',
      'build context: a directory, a .tar/.tar.gz, - (a tar on stdin), a Git URL (https://host/repo.git#ref:dir, git://, git@) or an http(s) tar',
      '.',
    )
    .option(
      '-f, --file <path>',
      'the Containerfile (default: Containerfile, else Dockerfile, in the context); - reads it from stdin; several are joined in order, as buildah',
      collect,
    )
    .option('-t, --tag <name>', 'name the image (repeatable): reg.io/repo:tag pushes, oci:DIR:TAG writes a layout, name:tag stays local', collect)
    .option('--target <stage>', 'build up to this stage')
    .option('--build-arg <K=V>', 'set a build argument (repeatable)', collect)
    .option('--platform <os/arch[,...]>', 'platforms to build for (default: this host); several make an image index')
    .option('--all-platforms', 'build for every platform all the base images offer (instead of --platform)')
    .option('--manifest <list>', "add the built image (each platform's) to this manifest list, created when missing; an entry of the same platform is replaced")
    .option('--label <K=V>', 'add a label to the image config (repeatable)', collect)
    .option('--annotation <K=V>', 'add an annotation to the manifest (repeatable; OCI format)', collect)
    .option('--format <oci|docker>', 'manifest and config media types', 'oci')
    .option('--timestamp <seconds>', 'creation time and file mtimes, Unix seconds (default: $SOURCE_DATE_EPOCH): reproducible digests')
    .option('--source-date-epoch <seconds>', "the same as --timestamp (buildah and BuildKit's name)")
    .option('--rewrite-timestamp', "accepted for buildah: with --timestamp/--source-date-epoch, new files' mtimes are always clamped")
    .option('--layers', 'accepted for buildah (also --layers=true|false): every step is cached; --no-cache skips the cache')
    .option('--iidfile <path>', "write the image ID (sha256:<config digest>; an index's digest for several platforms) to this file")
    .option('--metadata-file <path>', 'write the result as JSON: digest, config digest, descriptor, size, per-platform descriptors')
    .option('--env <K=V>', 'set an environment variable in the image config (repeatable), as buildah --env', collect)
    .option('--unsetenv <K>', 'remove an environment variable from the image config (repeatable)', collect)
    .option('--omit-history', 'write no history into the image config')
    .option('--ignorefile <path>', "read ignore patterns from this file instead of the context's .containerignore/.dockerignore")
    .option('--os <os>', 'the target OS (with --arch and --variant: another way to say --platform)')
    .option('--arch <arch>', 'the target architecture')
    .option('--variant <variant>', 'the target architecture variant')
    .option('--jobs <n>', 'accepted for buildah: independent stages always run in parallel')
    .option('--skip-unused-stages', 'accepted for buildah (also =true|false): only the stages the target needs are built')
    .option('--rm', 'accepted for buildah (also =true|false): no intermediate containers are kept')
    .option('--force-rm', 'accepted for buildah (also =true|false): no intermediate containers are kept')
    .option('--identity-label', 'accepted for buildah (also =true|false): stevedore adds no io.buildah.version label')
    .option('--source-policy-file <path>', 'a BuildKit source policy (JSON): pin images and URLs (CONVERT) or refuse them (DENY)')
    .option(
      '--compression-format <gzip|zstd|zstd:chunked>',
      'compression of layers that leave the machine (push, layout, archive, registry cache); zstd:chunked adds a table of contents for partial pulls',
      'gzip',
    )
    .option(
      '-o, --output <type=local,dest=DIR|type=tar,dest=FILE|DIR>',
      "also write the built stage's files to a directory or a tar file (repeatable)",
      collect,
    )
    .option('--squash', "the target stage's new layers become one layer (its base image's layers stay), as buildah --squash")
    .option(
      '--build-context <name=value>',
      'a named context for FROM, COPY --from and RUN --mount=from: a path, a Git or http URL, or docker-image://REF (repeatable)',
      collect,
    )
    .option('--ssh <default|id=socket>', 'forward an SSH agent socket to RUN --mount=type=ssh (default: $SSH_AUTH_SOCK; repeatable)', collect)
    .option('--cache-from <repo>', 'registry repository to read cached layers from (repeatable)', collect)
    .option('--cache-to <repo>', 'registry repository to write cached layers to', collect)
    .option('--no-cache', 'do not use cached layers')
    .option('--digestfile <path>', 'write the image digest to this file')
    .option('-q, --quiet', 'print only the image digest')
    .option('--secret <id=ID,src=PATH|id=ID,env=VAR>', 'a secret for RUN --mount=type=secret, from a file or an environment variable (repeatable)', collect)
    .option('--tls-verify <bool>', 'require HTTPS and verified certificates for registries (loopback may use HTTP)', parseBool)
    .option('--creds <user:password>', 'registry credentials for pulls and pushes')
    .option('--authfile <path>', 'auth file')
    .option('--result-file <path>', 'write a JSON result (digest or error reason) here, at most 4096 bytes (a termination message)')
    .option(
      '--pull <always|missing|never>',
      "pull policy for base images (buildah's true/false/bare --pull: always/missing/always); a local oci:DIR base that moved is pulled again",
      'missing',
    )
    .option('--runtime <runc|crun>', 'OCI runtime for RUN steps', 'runc')
    .option('--root <dir>', 'store root (default: $STEVEDORE_ROOT, /var/lib/stevedore for root, else $XDG_DATA_HOME/stevedore)')
    // Supply chain (src/cli/build-attest.ts): after the push, sign the digest and attach attestations.
    .option(
      '--sign-key <path>',
      'sign the pushed digest (cosign .sig) with this key: cosign.key (password from --sign-password-file or $COSIGN_PASSWORD) or a PKCS#8 PEM',
    )
    .option('--sign-password-file <path>', "with --sign-key: read the key's password from this file (a trailing newline is dropped)")
    .option('--sbom <spdx-json|cyclonedx-json>', "with --sign-key: attach the image's SBOM as a signed in-toto attestation (referrer and cosign .att)")
    .option('--provenance', 'with --sign-key: attach a signed SLSA v1 provenance statement (source, Containerfile digest, build args, builder version)')
    .option('--source-uri <uri>', 'with --provenance: where the context came from (e.g. git+https://host/org/app.git)')
    .option('--source-revision <commit>', 'with --source-uri: the commit built (default for a git+ URI: HEAD of the Git work tree holding the context)')
    // --remote (src/controllers/imagebuild-remote.ts): the cluster builds; this process pushes the context and follows.
    .option('--remote', 'build on the cluster: push the context as an OCI artifact, create an ImageBuild, follow it to the end')
    .option('--kubeconfig <path>', 'with --remote: kubeconfig (default: $KUBECONFIG, ~/.kube/config, or in-cluster)')
    .option('-n, --namespace <ns>', 'with --remote: namespace of the ImageBuild (default: the kubeconfig context’s, else default)')
    .option('--context-repo <repo>', 'with --remote: repository for the context artifact (default: <image repository>-context)')
    .option('--push-secret <name>', 'with --remote: dockerconfigjson Secret the build Pod pushes (and pulls the context) with')
    .option('--timeout <duration>', 'with --remote: give up the build after this long (e.g. 30m)')
    .action(async (context: string, o: BuildFlags & { remote?: boolean }, cmd: Command) => {
      if (o.remote) {
        if ((o.file ?? []).length > 1 || o.file?.[0] === '-') throw new InvalidInputError('--remote takes one -f path inside the context');
        // The cluster's build gets only what an ImageBuild says: a flag it cannot pass on is refused, not dropped.
        const local = Object.keys(o).filter((k) => cmd.getOptionValueSource(k) === 'cli' && !REMOTE_FLAGS.has(k));
        if (local.length > 0)
          throw new InvalidInputError(
            `--remote cannot pass on ${local.map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(', ')}: build locally, or set it in the ImageBuild`,
          );
        return exitWith(await (await import('./context.js')).runRemoteBuild(context, { ...o, file: o.file?.[0] }));
      }
      if (needsUserNamespace()) return exitWith(await reexecInUserNamespace());
      // Should a promise never settle (a stuck child process), Node exits when its loop drains:
      // that must not look like success.
      process.exitCode = EXIT_TOOL_ERROR;
      const signal = signalOnInterrupt();
      try {
        const flags = await optionsFromFlags(o, context);
        const reporter = o.quiet ? SILENT_REPORTER : textReporter(process.stderr);
        const registry = contextFrom({ creds: o.creds, tlsVerify: o.tlsVerify, authfile: o.authfile });
        // Absolute, so nothing depends on the working directory while the build runs.
        const store = await ImageStore.open(o.root !== undefined ? resolve(o.root) : undefined);
        // The signing code (sigstore, keys) is loaded only by builds that sign: the others start faster.
        const wantsAttest = [o.signKey, o.signPasswordFile, o.sbom, o.provenance, o.sourceUri, o.sourceRevision].some((v) => v !== undefined);
        const attestLib = wantsAttest ? await import('../build-attest.js') : undefined;
        const attest = attestLib ? await attestLib.planAttestations(o, context, flags.file) : undefined;
        // Signatures live in a registry: refuse before the build, not after it.
        if (attest && !attestLib!.pushedReference((o.tag ?? []).map(parseDestination)))
          throw new InvalidInputError('--sign-key, --sbom and --provenance need a registry destination (-t HOST/REPO:TAG)');
        const started = Date.now();
        // --manifest: the images go into the list's layout (compressed, as a push sends them), then into the list.
        const listTarget =
          o.manifest !== undefined
            ? new (await import('../../manifest/build-list.js')).BuiltImagesTarget(
                (await import('../../manifest/list.js')).listLocation(o.manifest, store.root),
              )
            : undefined;
        const result = await buildImage({
          ...flags,
          ...(listTarget ? { moreDestinations: [{ kind: 'transport' as const, text: listTarget.location.display, ref: listTarget }] } : {}),
          store,
          context,
          pullContext: registry,
          // The build Pod's result (and --metadata-file) names the digest each FROM tag resolved to.
          ...(o.resultFile || o.metadataFile ? { reportBaseImages: true } : {}),
          destContext: registry,
          reporter,
          signal,
          stdin: process.stdin,
        });
        const digest = result.image.digest;
        let signed: { signature: SignatureRecord; attestations: AttestationRecord[] } | undefined;
        if (attest && attestLib) {
          const { pushedReference, signAndAttest } = attestLib;
          const ref = pushedReference(result.destinations);
          if (!ref) throw new AttestationFailedError(`nothing was signed: --sign-key needs a registry destination (-t HOST/REPO:TAG); the image is ${digest}`);
          try {
            signed = await signAndAttest(attest, {
              ref,
              digest: digest as Digest,
              ctx: registry,
              buildArgs: keyValues('--build-arg', o.buildArg, true),
              ...(o.target !== undefined ? { target: o.target } : {}),
              platforms: result.platforms.map((p) => p.platform),
              platform: result.platform,
              builderVersion: VERSION,
              startedOn: new Date(started),
              signal,
            });
          } catch (err) {
            throw new AttestationFailedError(`the image ${digest} was pushed, but signing or attaching failed: ${(err as Error)?.message ?? String(err)}`, err);
          }
        }
        if (!o.quiet) {
          process.stderr.write(
            `COMMIT ${(o.tag ?? []).join(' ')}\n--> ${digest.slice(7, 19)} (${result.execution.stepsRun} steps run, ${result.execution.cacheHits} from cache, ${((Date.now() - started) / 1000).toFixed(1)}s)\n`,
          );
          for (const d of result.destinations)
            if (!(d.kind === 'transport' && d.ref === listTarget))
              process.stderr.write(`Successfully tagged ${d.kind === 'transport' ? d.text : d.storeName}\n`);
          if (signed) {
            process.stderr.write(`Signed ${digest}: ${signed.signature.tag} ${signed.signature.digest}\n`);
            for (const a of signed.attestations) process.stderr.write(`Attached ${a.kind} (${a.predicateType}) to ${a.subject}: ${a.digest ?? a.envelope}\n`);
          }
        }
        if (listTarget) {
          const { addBuiltImages } = await import('../../manifest/build-list.js');
          const added = await addBuiltImages(listTarget, { signal });
          if (!o.quiet)
            for (const a of added.added) process.stderr.write(`Added ${a.digest} (${a.platform}) to manifest list ${listTarget.location.display}\n`);
        }
        // Written whole or not at all: a script reading them never sees half a digest.
        if (o.digestfile) await writeFileAtomic(resolve(o.digestfile), digest);
        if (o.iidfile) await writeFileAtomic(resolve(o.iidfile), result.platforms.length > 1 ? digest : result.image.configDigest);
        if (o.metadataFile) await writeFileAtomic(resolve(o.metadataFile), `${JSON.stringify(buildMetadata(result, o.tag ?? []), null, 2)}\n`);
        if (o.resultFile) {
          const bases = result.execution.baseImages;
          const doc = { image: o.tag?.[0] ?? '', digest, size: result.image.size, platforms: result.platforms, ...(bases.length ? { baseImages: bases } : {}) };
          await writeResultFile(o.resultFile, signed ? withAttestations(doc, signed) : doc);
        }
        process.stdout.write(`${digest}\n`);
      } catch (err) {
        const aborted = signal.aborted;
        const reason = failureReason(err, aborted);
        const message =
          aborted && !(err instanceof BuildInterruptedError)
            ? `build interrupted: nothing was tagged (${(err as Error)?.message ?? String(err)})`
            : ((err as Error)?.message ?? String(err));
        const code = err instanceof StevedoreError ? ` [${err.code}]` : '';
        process.stderr.write(`Error: ${message}${code}\n`);
        if (o.resultFile) await writeResultFile(o.resultFile, { error: { reason, message } }).catch(() => undefined);
        return exitWith(reason === 'BuildStepFailed' ? stepExitCode(err) : EXIT_TOOL_ERROR);
      }
    });
}
