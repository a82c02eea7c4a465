import { arr, dateTime, duration, exactlyOneOf, int, bool, obj, str, withRules, enumOf, quantity, record, type Schema, type Infer } from './schema.js';
import {
  NodeSelector,
  Platform,
  Tolerations,
  conditions,
  dockerConfigSecretRef,
  imageReference,
  lastHandledReconcileAt,
  observedGeneration,
  repository,
  secretName,
  type KubeObject,
} from './common.js';
import { AGE_COLUMN, readyColumns, type KindDefinition } from './kind.js';

/** Reasons of the Ready condition of an ImageBuild. */
export const IMAGE_BUILD_REASONS = [
  'Building',
  'Succeeded',
  'Failed',
  'DeadlineExceeded',
  'Canceled',
  'InvalidSpec',
  'SourceUnavailable',
  'CredentialsNotFound',
  'SchedulingNotAllowed',
  'PodSecurityRejected',
  'UserNamespacesUnsupported',
] as const;
export type ImageBuildReason = (typeof IMAGE_BUILD_REASONS)[number];

/**
 * Compute resources with every amount above zero: `cpu: '-1'` or `0` would silently mean no limit.
 * The rule uses the API server's CEL quantity library; the pattern has already made it a quantity.
 */
const withMaxLength = <T>(s: Schema<T>, maxLength: number): Schema<T> => ({ ...s, json: { ...s.json, maxLength } });
const PositiveResourceList = record(
  'Amounts per resource name (cpu, memory, ephemeral-storage, …), each above zero.',
  // maxLength bounds the rule's cost estimate (the API server refuses an unbounded string here).
  withRules(withMaxLength(quantity('An amount of a resource, above zero.'), 64), [
    { rule: "quantity(string(self)).isGreaterThan(quantity('0'))", message: 'must be a positive quantity' },
  ]),
  { maxProperties: 16 },
);
const ResourceRequirements = obj('Compute resources for the build Pod (as core/v1 ResourceRequirements).', {
  limits: PositiveResourceList,
  requests: PositiveResourceList,
});

const relativePath = (description: string, dflt?: string) =>
  withRules(
    str(description, {
      maxLength: 4096,
      minLength: 1,
      pattern: '^[^/]',
      ...(dflt === undefined ? {} : { default: dflt }),
    }),
    [{ rule: "!self.matches('(^|/)\\\\.\\\\.(/|$)')", message: 'must be a relative path that stays inside the source (no .. segments)' }],
  );

export const ImageBuildSource = obj(
  'Where the build context comes from. Exactly one of git, artifact, inline or script.',
  {
    git: obj(
      'A Git repository, cloned shallowly at the given revision.',
      {
        url: str('Clone URL (https://, ssh:// or git@host:path).', {
          minLength: 1,
          maxLength: 2048,
          pattern: '^(https?://|ssh://|git@)[^\\s]+$',
        }),
        revision: str('Branch, tag or full commit SHA to build. Default: the remote’s default branch.', {
          minLength: 1,
          maxLength: 256,
        }),
        credentials: obj(
          'A Secret in the same namespace with Git credentials: keys username and password (HTTPS), or ssh-privatekey and optionally known_hosts (SSH).',
          { name: secretName('Name of the Secret.') },
          { required: ['name'] },
        ),
      },
      { required: ['url'] },
    ),
    artifact: obj(
      'An OCI artifact whose single layer is a tar(.gz) of the build context (as pushed by `stevedore context push`).',
      {
        image: imageReference('Reference of the artifact, by tag or digest.'),
        credentials: dockerConfigSecretRef('Credentials to pull the artifact.'),
      },
      { required: ['image'] },
    ),
    inline: obj(
      'A Containerfile written in this object; the build context is empty.',
      {
        containerfile: str('Containerfile text.', { minLength: 1, maxLength: 65536 }),
      },
      { required: ['containerfile'] },
    ),
    script: obj(
      "A shell script instead of a Containerfile: Buildah's scripted build (from, run, copy, add, config, commit). The build Pod runs it with `sh -eu` in an empty directory, `buildah` meaning `stevedore buildah`; it commits the image to the local name in $IMAGE, and the Pod then pushes that image to output.image ($OUTPUT_IMAGE). The script gets no registry credentials and no Kubernetes token; buildArgs are its environment. See docs/scripted-builds.md.",
      {
        inline: str('The script text (POSIX sh).', { minLength: 1, maxLength: 65536 }),
      },
      { required: ['inline'] },
    ),
  },
  { rules: [exactlyOneOf(['git', 'artifact', 'inline', 'script'], 'exactly one of source.git, source.artifact, source.inline or source.script must be set')] },
);

export const BuildArg = obj(
  'A build argument (ARG) value.',
  {
    name: str('ARG name.', { pattern: '^[A-Za-z_][A-Za-z0-9_]*$', maxLength: 256 }),
    value: str('Value.', { maxLength: 32768 }),
  },
  { required: ['name', 'value'] },
);

/** SBOM formats of `spec.sbomFormat`. */
export const SBOM_SPEC_FORMATS = ['spdx', 'cyclonedx'] as const;

export const ImageBuildSigning = obj(
  'Sign the pushed image (cosign .sig) and its attestations with a key.',
  {
    secretRef: obj(
      "A Secret in the same namespace with keys cosign.key (an ECDSA private key: cosign's encrypted PEM or PKCS#8) and cosign.password (its password, may be empty), as `cosign generate-key-pair k8s://NS/NAME` writes it. It is mounted into the build container only, from memory (a Secret volume), and never logged.",
      { name: secretName('Name of the Secret.') },
      { required: ['name'] },
    ),
  },
  { required: ['secretRef'] },
);

export const ImageBuildSpec = obj(
  'What to build and where to push it.',
  {
    source: ImageBuildSource,
    containerfile: relativePath(
      'Path of the Containerfile relative to the context directory. Default: Containerfile, or Dockerfile when only that exists. Ignored for inline sources.',
    ),
    contextDir: relativePath('Directory inside the source used as the build context.', '.'),
    buildArgs: arr('Values for ARG instructions (for a script source: environment variables of the script).', BuildArg, {
      listType: 'map',
      mapKeys: ['name'],
      maxItems: 128,
    }),
    target: str('Build only up to this stage name.', { maxLength: 256, minLength: 1 }),
    platforms: arr(
      'Platforms to build; more than one produces an image index. Default: the platform of the node that runs the build. With several, each is built natively by a Pod of its own on a Ready node of that platform (kubernetes.io/os and kubernetes.io/arch labels) when every platform has one, each Pod pushing `<tag>-<os>-<arch>[-<variant>]` and the controller writing the index under the output tag; otherwise (or with signing) one Pod builds them all, emulating foreign platforms.',
      Platform,
      { listType: 'set', minItems: 1, maxItems: 16 },
    ),
    output: obj(
      'Where the built image is pushed.',
      {
        image: imageReference('Destination reference with a tag, e.g. registry.example.com/team/app:1.2.3.'),
        pushSecret: dockerConfigSecretRef('Credentials to push the image.'),
        insecure: bool('Push over plain HTTP or HTTPS without verification (test registries only).', { default: false }),
        compression: enumOf(
          'Compression of every pushed layer (stevedore build --compression-format, as buildah). Default gzip. zstd and zstd:chunked (zstd with a table of contents, so podman >= 5 can pull only the files it lacks) make the manifests OCI ones.',
          ['gzip', 'zstd', 'zstd:chunked'] as const,
        ),
      },
      { required: ['image'] },
    ),
    cache: obj(
      'A registry repository used as the layer cache (read before building, written after), so a fresh build Pod reuses the steps an earlier build ran. `cache: {}` uses <output repository>/cache.',
      {
        repository: repository(
          "Cache repository, e.g. registry.example.com/team/app-cache. Default: the administrator's cache repository for this namespace and name (chart buildPods.cacheRepository), else the output repository followed by /cache.",
        ),
        secret: dockerConfigSecretRef('Credentials for the cache repository (default: output.pushSecret when the cache is in the output registry).'),
      },
    ),
    signing: ImageBuildSigning,
    rebuild: obj('When to build again without a spec change.', {
      onBaseImageChange: bool(
        'Build again when a base image (a FROM image, by tag) resolves to another digest than the last build used. The bases are resolved with HEAD requests when a build starts and polled every interval; status.baseImages lists them.',
      ),
      interval: withRules(
        duration(
          'How often the base images are checked (HEAD only). The controller never polls more often than its --min-base-image-poll-interval (default 1m).',
          { default: '10m' },
        ),
        [{ rule: "duration(self) >= duration('1s')", message: 'interval must be at least 1s' }],
      ),
    }),
    // A boolean and a format, not one bool-or-string field: a structural schema (and CEL) needs one type per field.
    sbom: bool("Attach the image's SBOM as a signed in-toto attestation (an OCI referrer and cosign's .att tag). Needs signing."),
    sbomFormat: enumOf('SBOM format: spdx (SPDX 2.3 JSON) or cyclonedx (CycloneDX 1.6 JSON).', SBOM_SPEC_FORMATS, { default: 'spdx' }),
    provenance: bool(
      'Attach a signed SLSA v1 provenance statement (source URI and commit, Containerfile digest, build args, builder version). Default: true when signing is set. Needs signing.',
    ),
    timeout: withRules(duration('Give up the build after this long (reason DeadlineExceeded); at least 1s.', { default: '1h' }), [
      { rule: "duration(self) >= duration('1s')", message: 'timeout must be at least 1s' },
    ]),
    resources: ResourceRequirements,
    nodeSelector: withRules(NodeSelector, [
      {
        rule: "!self.exists(k, k == 'node-role.kubernetes.io/control-plane' || k == 'node-role.kubernetes.io/master')",
        message: 'build Pods never run on control-plane nodes',
      },
    ]),
    tolerations: withRules(Tolerations, [
      {
        rule: "self.all(t, has(t.key) && t.key != '' && t.key != 'node-role.kubernetes.io/control-plane' && t.key != 'node-role.kubernetes.io/master')",
        message:
          'build Pods never run on control-plane nodes: a toleration needs a key, and not node-role.kubernetes.io/control-plane or /master (other keys only as the controller’s --build-pod-allowed-scheduling-keys allows)',
      },
    ]),
    successfulBuildsHistoryLimit: int('How many finished successful build Pods to keep.', {
      minimum: 0,
      maximum: 100,
      default: 1,
      format: 'int32',
    }),
    failedBuildsHistoryLimit: int('How many finished failed build Pods to keep (for their logs).', {
      minimum: 0,
      maximum: 100,
      default: 3,
      format: 'int32',
    }),
  },
  {
    required: ['source', 'output'],
    rules: [
      { rule: 'has(self.signing) || !has(self.sbom) || !self.sbom', message: 'sbom needs signing.secretRef: attestations are signed', fieldPath: '.sbom' },
      {
        rule: 'has(self.signing) || !has(self.provenance) || !self.provenance',
        message: 'provenance needs signing.secretRef: attestations are signed',
        fieldPath: '.provenance',
      },
      // What a script build does not do (yet): refused, not silently ignored.
      {
        rule: '!has(self.source.script) || !has(self.signing)',
        message: 'a script build is not signed (not supported yet): remove signing, or build from a Containerfile',
        fieldPath: '.signing',
      },
      {
        rule: '!has(self.source.script) || !has(self.platforms)',
        message: 'a script build is for the platform of the node it runs on: remove platforms, or build from a Containerfile',
        fieldPath: '.platforms',
      },
      { rule: '!has(self.source.script) || !has(self.cache)', message: 'a script build uses no layer cache: remove cache', fieldPath: '.cache' },
      {
        rule: "!has(self.source.script) || !has(self.buildArgs) || self.buildArgs.all(a, !(a.name in ['HOME', 'TMPDIR', 'PATH', 'IMAGE', 'OUTPUT_IMAGE', 'STEVEDORE_ROOT']))",
        message: "a script build's buildArgs are its environment: HOME, TMPDIR, PATH, IMAGE, OUTPUT_IMAGE and STEVEDORE_ROOT are set by the build Pod",
        fieldPath: '.buildArgs',
      },
    ],
  },
);
export type ImageBuildSpec = Infer<typeof ImageBuildSpec>;

export const ImageBuildStatus = obj('Observed state of the ImageBuild.', {
  observedGeneration: observedGeneration(),
  conditions: conditions(
    `Ready reasons: ${IMAGE_BUILD_REASONS.join(', ')}; or, with Stalled=True, the code of an error that cannot succeed for this spec (e.g. INVALID_INPUT).`,
  ),
  lastHandledReconcileAt: lastHandledReconcileAt(),
  podName: str("The Pod running (or that ran) the current build; for a build with one Pod per platform, the build's name (its Pods are platforms[].podName).", {
    maxLength: 253,
  }),
  image: imageReference('The reference that was pushed (output.image).'),
  imageDigest: str('Digest of the pushed manifest or index.', { maxLength: 256 }),
  imageSize: int('Total size in bytes of the pushed manifest, config and layers (all platforms).', { minimum: 0 }),
  sourceCommit: str('The Git commit SHA (or artifact digest) that was built.', { maxLength: 256 }),
  startTime: dateTime('When the build started.'),
  completionTime: dateTime('When the build finished, successfully or not.'),
  failureDetails: obj('Why the build failed.', {
    reason: str('Failure reason, e.g. Failed, DeadlineExceeded, Canceled, SourceUnavailable.', { maxLength: 256 }),
    message: str('Failure message (the failing instruction with file:line, or the error).', { maxLength: 32768 }),
  }),
  signatureDigest: str('Digest of the cosign signature manifest (tag sha256-<hex>.sig) that signs imageDigest, when signing is set.', { maxLength: 256 }),
  attestations: arr(
    'The signed attestations attached to the image.',
    obj(
      'One attestation.',
      {
        kind: str('sbom or provenance.', { maxLength: 32 }),
        predicateType: str('The in-toto predicate type, e.g. https://spdx.dev/Document or https://slsa.dev/provenance/v1.', { maxLength: 256 }),
        digest: str("Digest of the attestation's OCI referrer manifest (its DSSE envelope when no referrer was written).", { maxLength: 256 }),
        subject: str("Digest of the image manifest it is about (a platform's image for the SBOM of an index).", { maxLength: 256 }),
      },
      { required: ['kind', 'predicateType', 'digest'] },
    ),
    { maxItems: 16 },
  ),
  baseImages: arr(
    'The base images (FROM, by tag) of the current build and the digest each resolved to when it started; with spec.rebuild.onBaseImageChange, a change of one of them starts a new build.',
    obj(
      'One base image.',
      {
        name: str('The image as the FROM line names it (build args applied).', { maxLength: 512 }),
        digest: str('The digest the name resolved to (what a HEAD of the tag returned).', { maxLength: 256 }),
      },
      { required: ['name', 'digest'] },
    ),
    { maxItems: 32 },
  ),
  platformBuild: str(
    'How a build of several platforms runs: "native: <platforms>" (one Pod per platform, on a node of that platform) or "emulated in one Pod: <platforms> (<why>)".',
    { maxLength: 1024 },
  ),
  platforms: arr(
    'The image built for each platform (and, for a build fanned out to one Pod per platform, that Pod).',
    obj(
      'One platform’s image.',
      {
        platform: Platform,
        digest: str('Digest of that platform’s manifest, once pushed.', { maxLength: 256 }),
        podName: str('The Pod that builds this platform natively (absent when one Pod builds every platform).', { maxLength: 253 }),
      },
      { required: ['platform'] },
    ),
    { listType: 'map', mapKeys: ['platform'] },
  ),
});
export type ImageBuildStatus = Infer<typeof ImageBuildStatus>;

export type ImageBuild = KubeObject<'ImageBuild', ImageBuildSpec, ImageBuildStatus>;

export const imageBuildKind: KindDefinition<ImageBuildSpec, ImageBuildStatus> = {
  kind: 'ImageBuild',
  listKind: 'ImageBuildList',
  plural: 'imagebuilds',
  singular: 'imagebuild',
  shortNames: ['ib'],
  categories: ['stevedore'],
  description:
    'ImageBuild builds a container image from a Containerfile (in Git, an OCI artifact, or inline) or a Buildah-style script in a Pod and pushes it to a registry.',
  spec: ImageBuildSpec,
  status: ImageBuildStatus,
  printerColumns: [
    ...readyColumns(),
    { name: 'Digest', type: 'string', jsonPath: '.status.imageDigest', description: 'Digest of the pushed image.' },
    AGE_COLUMN,
    { name: 'Image', type: 'string', jsonPath: '.spec.output.image', description: 'Destination image.', priority: 1 },
    { name: 'Commit', type: 'string', jsonPath: '.status.sourceCommit', description: 'Source commit built.', priority: 1 },
    { name: 'Base', type: 'string', jsonPath: '.status.baseImages[0].digest', description: 'Digest of the (first) base image the build used.', priority: 1 },
    {
      name: 'Platforms',
      type: 'string',
      jsonPath: '.status.platformBuild',
      description: 'How several platforms are built: native (one Pod per platform) or emulated in one Pod.',
      priority: 1,
    },
  ],
};
