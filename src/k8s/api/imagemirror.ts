import { DNS_SUBDOMAIN_PATTERN, arr, atMostOneOf, bool, dateTime, duration, enumOf, exactlyOneOf, int, obj, str, withRules, type Infer } from './schema.js';
import {
  Platform,
  Suspend,
  conditions,
  dockerConfigSecretRef,
  lastHandledReconcileAt,
  observedGeneration,
  repository,
  secretName,
  type KubeObject,
} from './common.js';
import { AGE_COLUMN, readyColumns, type KindDefinition } from './kind.js';

/** Reasons of the Ready condition of an ImageMirror. */
export const IMAGE_MIRROR_REASONS = [
  'Succeeded',
  'PartialFailure',
  'SyncFailed',
  'Progressing',
  'Suspended',
  'InvalidSpec',
  'CredentialsNotFound',
  'PolicyDenied',
  'PolicyNotFound',
  'InvalidPolicy',
  'LayoutNotFound',
] as const;
export type ImageMirrorReason = (typeof IMAGE_MIRROR_REASONS)[number];

export const TAG_ACTIONS = ['copied', 'skipped', 'failed', 'denied', 'pruned'] as const;
export type TagAction = (typeof TAG_ACTIONS)[number];

/**
 * The pattern must compile (CEL's matches() is RE2): matching it against '' either way is true, and
 * an invalid pattern makes the rule fail with the API server's compile error.
 */
const VALID_REGEX = { rule: "''.matches(self) || !''.matches(self)", message: 'must be a valid RE2 regular expression' };

const Tag = str('A tag.', { pattern: '^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$', maxLength: 128 });

function location(side: 'source' | 'destination') {
  const verb = side === 'source' ? 'read from' : 'written to';
  return obj(
    `Where images are ${verb}: a registry repository, or an OCI image layout on a volume (for air-gapped export and import). Exactly one of registry or layout.`,
    {
      registry: obj(
        `A repository in an OCI registry that images are ${verb}.`,
        {
          repository: repository('The repository, without tag or digest, for example registry.example.com/team/app.'),
          credentials: dockerConfigSecretRef(`Credentials for the ${side} registry.`),
          insecure: bool('Use plain HTTP, or HTTPS without certificate verification (test and lab registries only).', {
            default: false,
          }),
          caSecretRef: obj(
            `A private CA for the ${side} registry: a PEM certificate (or several) in a Secret of the same namespace as this object, trusted on top of the system roots for this mirror's connections to this registry only. ` +
              'With it the certificate is always verified, loopback registries included. A missing Secret or key is retried (reason CredentialsNotFound); a key that holds no PEM certificate stalls the mirror (InvalidSpec). Cannot be combined with insecure.',
            {
              name: secretName('Name of the Secret.'),
              key: str('Key of the Secret that holds the PEM CA certificate(s).', {
                default: 'ca.crt',
                minLength: 1,
                maxLength: 253,
                pattern: '^[-._a-zA-Z0-9]+$',
              }),
            },
            { required: ['name'] },
          ),
        },
        {
          required: ['repository'],
          rules: [
            {
              rule: '!has(self.caSecretRef) || !self.insecure',
              message: 'caSecretRef and insecure contradict each other: a private CA is for verifying the registry',
              fieldPath: '.caSecretRef',
            },
          ],
        },
      ),
      layout: obj(
        side === 'source'
          ? 'An OCI image layout that images are read from (air-gapped import): the ref names (org.opencontainers.image.ref.name) of its index.json are the tags, copied to the registry destination under the same names. ' +
              'The controller cannot mount PersistentVolumeClaims of other namespaces itself, so layouts live on volumes the operator mounts into the controller under its --layout-root (the chart: controller.extraArgs, extraVolumes, extraVolumeMounts): the layout of a mirror in namespace NS is <layout-root>/NS/<claimName>/<path>. ' +
              'A volume that is not mounted is retried (reason LayoutNotFound); a path that leads out of the volume through a symbolic link stalls the mirror. prune is not supported with a layout source, and a layout carries no signatures, so only spec.policy scopes of the oci transport that need none can accept its images.'
          : 'An OCI image layout that images are written to (air-gapped export): the layout for the source repository R is <path>/R inside the volume (one layout per repository, as stevedore sync and skopeo sync write them), each tag a ref name of its index.json. ' +
              'The controller cannot mount PersistentVolumeClaims of other namespaces itself, so layouts live on volumes the operator mounts into the controller under its --layout-root (the chart: controller.extraArgs, extraVolumes, extraVolumeMounts): <layout-root>/NS/<claimName> for a mirror in namespace NS. ' +
              'A volume that is not mounted is retried (reason LayoutNotFound); a path that leads out of the volume through a symbolic link stalls the mirror. Signatures are not written to layouts.',
        {
          claimName: str(
            'Name of the volume: the directory <layout-root>/<this namespace>/<claimName> of the controller, where the operator mounts it (typically a PersistentVolumeClaim of the same name, in the controller’s namespace).',
            {
              pattern: DNS_SUBDOMAIN_PATTERN,
              minLength: 1,
              maxLength: 253,
            },
          ),
          path: withRules(
            str(
              `Directory inside the volume ${side === 'source' ? 'that holds the layout' : 'under which layouts are written (created on export)'}; ".." is not allowed.`,
              {
                default: '/',
                maxLength: 4096,
                pattern: '^/?([^/]+/?)*$',
              },
            ),
            [{ rule: "!self.matches('(^|/)[.][.](/|$)')", message: 'layout.path must not contain ".."' }],
          ),
        },
        { required: ['claimName'] },
      ),
    },
    { rules: [exactlyOneOf(['registry', 'layout'], `exactly one of ${side}.registry or ${side}.layout must be set`)] },
  );
}

export const ImageMirrorSpec = obj(
  'What to mirror, from where to where, and when.',
  {
    source: location('source'),
    destination: location('destination'),
    tags: obj(
      'Which source tags to mirror. Without this field every tag is mirrored. allow, deny and semver filter the source’s tag list; newest then keeps the N newest of what remains. Attachment tags (sha256-<hex>.sig, .att, .sbom and the referrers fallback tag sha256-<hex>) are never selected by the filters: they travel with their images (see signatures).',
      {
        list: arr('Exactly these tags (cannot be combined with the filters).', Tag, {
          listType: 'set',
          minItems: 1,
          maxItems: 1024,
        }),
        allow: withRules(str('RE2 regular expression a tag must match in full to be mirrored.', { maxLength: 256, minLength: 1 }), [VALID_REGEX]),
        deny: withRules(str('RE2 regular expression; matching tags are not mirrored even if allowed.', { maxLength: 256, minLength: 1 }), [VALID_REGEX]),
        semver: str('Semantic-version range (node-semver syntax, e.g. ">=1.2.0 <2"); tags that are not versions (a leading v is accepted) are not mirrored.', {
          maxLength: 256,
          minLength: 1,
        }),
        newest: int('Keep only the N newest of the selected tags: by version when semver is set, otherwise by the image’s creation time.', {
          minimum: 1,
          maximum: 10000,
          format: 'int32',
        }),
      },
      {
        rules: [
          {
            rule: '!has(self.list) || !(has(self.allow) || has(self.deny) || has(self.semver) || has(self.newest))',
            message: 'tags.list names tags exactly and cannot be combined with allow, deny, semver or newest',
          },
        ],
      },
    ),
    platforms: arr(
      'Platforms to copy from multi-platform images. Absent: all platforms, and indexes are copied unchanged (same digest). Listed: only these platforms; the copied index is rewritten and gets a new digest.',
      Platform,
      { listType: 'set', minItems: 1, maxItems: 32 },
    ),
    schedule: obj(
      'When to sync. Without a schedule the mirror syncs when created, when its spec changes, and when the reconcile.stevedore.dev/requestedAt annotation changes.',
      {
        interval: duration('Sync this long after the previous sync started, e.g. 30m or 6h (at least 1m).'),
        cron: str('Sync at the times of this cron expression (5 fields, e.g. "0 */6 * * *").', {
          maxLength: 128,
          minLength: 9,
        }),
        timeZone: str('IANA time zone the cron expression is read in, e.g. Europe/Berlin. Default UTC.', {
          maxLength: 64,
          minLength: 1,
        }),
      },
      {
        rules: [
          atMostOneOf(['interval', 'cron'], 'schedule.interval and schedule.cron are mutually exclusive'),
          { rule: 'has(self.interval) || has(self.cron)', message: 'schedule needs one of interval or cron' },
          { rule: '!has(self.timeZone) || has(self.cron)', message: 'schedule.timeZone applies only to cron', fieldPath: '.timeZone' },
          {
            rule: "!has(self.interval) || duration(self.interval) >= duration('1m')",
            message: 'schedule.interval must be at least 1m',
            fieldPath: '.interval',
          },
        ],
      },
    ),
    suspend: Suspend,
    prune: bool(
      'Delete destination tags that the tag selection would include but that no longer exist in the source. Tags outside the selection are never touched.',
      { default: false },
    ),
    dryRun: bool('Compute and report what a sync would copy and prune (status.tags), without writing anything.', {
      default: false,
    }),
    policy: obj(
      'A containers-policy.json(5) every copied tag must satisfy, checked at the source before anything of the tag is written: a tag the policy refuses is not copied (status.tags action denied, with the reason; Ready=False reason PolicyDenied, or PartialFailure when other tags succeed; a Warning Event). ' +
        'The policy lives in a Secret of the mirror’s own namespace (as Flux’s verify.secretRef: the controller may get Secrets one by one but not ConfigMaps). ' +
        'Public keys go inline (keyData, keyDatas, rekorPublicKeyData, fulcio.caData) or in other keys of the same Secret: keyPath, keyPaths, rekorPublicKeyPath(s) and fulcio.caPath name a key of that Secret (e.g. "keyPath": "cosign.pub"), never a file of the controller. ' +
        'A missing Secret or key is retried (reason PolicyNotFound); a policy that does not parse stalls the mirror (reason InvalidPolicy) until the spec or the reconcile.stevedore.dev/requestedAt annotation changes. ' +
        'Tags already at the destination with the source’s digest are skipped without a new check.',
      {
        secretRef: obj(
          'The Secret holding the policy, in the same namespace as this object.',
          {
            name: secretName('Name of the Secret.'),
            key: str('Key of the Secret that holds the policy JSON.', { default: 'policy.json', minLength: 1, maxLength: 253, pattern: '^[-._a-zA-Z0-9]+$' }),
          },
          { required: ['name'] },
        ),
      },
      { required: ['secretRef'] },
    ),
    compression: enumOf(
      'Convert every layer to this compression at the destination. Absent: layers are copied as the source has them. zstd:chunked is zstd with a table of contents, so podman >= 5 can pull only the files it lacks. ' +
        'A converted image has new layer and manifest digests, so signatures made for the source do not cover the copy; the copy is annotated with the source digest and the compression, and a later sync skips it while the source is unchanged. ' +
        'zstd and zstd:chunked make the manifests OCI ones. Not supported with a layout source.',
      ['gzip', 'zstd', 'zstd:chunked'] as const,
    ),
    signatures: enumOf(
      'Registry to registry, carry cosign signatures, attestations, SBOMs and OCI referrers of each copied image along with it (carry), or leave them behind (remove, as skopeo --remove-signatures).',
      ['carry', 'remove'] as const,
      { default: 'carry' },
    ),
  },
  {
    required: ['source', 'destination'],
    rules: [
      {
        // The same repository on both sides would copy every tag onto itself (and prune could delete them).
        rule: '!has(self.source.registry) || !has(self.destination.registry) || self.source.registry.repository.lowerAscii() != self.destination.registry.repository.lowerAscii()',
        message: 'source and destination are the same repository',
        fieldPath: '.destination',
      },
      {
        rule: '!has(self.source.layout) || !has(self.destination.layout)',
        message: 'source and destination are both layouts; one side must be a registry',
        fieldPath: '.destination',
      },
    ],
  },
);
export type ImageMirrorSpec = Infer<typeof ImageMirrorSpec>;

export const TagStatus = obj(
  'Outcome for one tag in the last sync.',
  {
    tag: Tag,
    digest: str('Digest of the manifest or index at the source.', { maxLength: 256 }),
    action: enumOf('What the last sync did with this tag (in a dry run: what it would do).', TAG_ACTIONS),
    error: str('Why the tag failed (action failed) or why the policy refused it (action denied).', { maxLength: 4096 }),
  },
  { required: ['tag', 'action'] },
);
export type TagStatus = Infer<typeof TagStatus>;

export const ImageMirrorStatus = obj('Observed state of the ImageMirror.', {
  observedGeneration: observedGeneration(),
  conditions: conditions(
    `Ready reasons: ${IMAGE_MIRROR_REASONS.join(', ')}. A sync where some tags failed is Ready=False with reason PartialFailure. With Stalled=True the reason may also be the code of an error that cannot succeed for this spec (e.g. INVALID_INPUT).`,
  ),
  lastHandledReconcileAt: lastHandledReconcileAt(),
  lastSyncTime: dateTime('When the last sync finished.'),
  nextSyncTime: dateTime('When the next scheduled sync starts (absent without a schedule or while suspended).'),
  counts: obj('Tag counts of the last sync.', {
    selected: int('Tags the selection chose.', { minimum: 0 }),
    copied: int('Tags copied (new or changed at the source).', { minimum: 0 }),
    skipped: int('Tags already up to date at the destination.', { minimum: 0 }),
    failed: int('Tags that could not be copied.', { minimum: 0 }),
    denied: int('Tags spec.policy refused (not copied).', { minimum: 0 }),
    pruned: int('Destination tags deleted by prune.', { minimum: 0 }),
  }),
  tags: arr('Per-tag outcome of the last sync.', TagStatus, { listType: 'map', mapKeys: ['tag'] }),
});
export type ImageMirrorStatus = Infer<typeof ImageMirrorStatus>;

export type ImageMirror = KubeObject<'ImageMirror', ImageMirrorSpec, ImageMirrorStatus>;

export const imageMirrorKind: KindDefinition<ImageMirrorSpec, ImageMirrorStatus> = {
  kind: 'ImageMirror',
  listKind: 'ImageMirrorList',
  plural: 'imagemirrors',
  singular: 'imagemirror',
  shortNames: ['im'],
  categories: ['stevedore'],
  description: 'ImageMirror keeps a destination (registry repository or OCI layout) in sync with chosen tags and platforms of a source, once or on a schedule.',
  spec: ImageMirrorSpec,
  status: ImageMirrorStatus,
  printerColumns: [
    ...readyColumns(),
    {
      name: 'Last Sync',
      type: 'date',
      jsonPath: '.status.lastSyncTime',
      description: 'When the last sync finished.',
    },
    AGE_COLUMN,
    {
      name: 'Source',
      type: 'string',
      jsonPath: '.spec.source.registry.repository',
      description: 'Source repository.',
      priority: 1,
    },
    {
      name: 'Destination',
      type: 'string',
      jsonPath: '.spec.destination.registry.repository',
      description: 'Destination repository.',
      priority: 1,
    },
    {
      name: 'Copied',
      type: 'integer',
      jsonPath: '.status.counts.copied',
      description: 'Tags copied by the last sync.',
      priority: 1,
    },
    {
      name: 'Failed',
      type: 'integer',
      jsonPath: '.status.counts.failed',
      description: 'Tags that failed in the last sync.',
      priority: 1,
    },
  ],
};
