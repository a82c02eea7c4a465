import {
  DNS_LABEL_PATTERN,
  DNS_SUBDOMAIN_PATTERN,
  arr,
  atMostOneOf,
  bool,
  dateTime,
  duration,
  enumOf,
  exactlyOneOf,
  int,
  obj,
  quantity,
  str,
  withRules,
  type Infer,
  type Schema,
} from './schema.js';
import type { ResourcePath } from '../runtime/client.js';
import {
  GROUP,
  LocalSecretReference,
  NodeSelector,
  VERSION,
  conditions,
  imageReference,
  lastHandledReconcileAt,
  observedGeneration,
  secretName,
  type KubeObject,
} from './common.js';
import { AGE_COLUMN, readyColumns, type KindDefinition } from './kind.js';

export const CONTAINER_RUN_PHASES = ['Pending', 'Pulling', 'Running', 'Succeeded', 'Failed', 'Unknown'] as const;
export type ContainerRunPhase = (typeof CONTAINER_RUN_PHASES)[number];

/** Common values of status.reason (and of the Ready condition's reason once the run has finished). */
export const CONTAINER_RUN_REASONS = [
  'Scheduled',
  'Unschedulable',
  'Pulling',
  'Running',
  'Completed',
  'Error',
  'OOMKilled',
  'DeadlineExceeded',
  'Evicted',
  'ErrImagePull',
  'PolicyDenied',
  'BackoffLimitExceeded',
  'NodeLost',
  'CreateContainerConfigError',
  'InvalidSpec',
  'PrivilegeNotGranted',
  'UserNamespaceUnavailable',
] as const;
export type ContainerRunReason = (typeof CONTAINER_RUN_REASONS)[number];

const configMapName = (description: string) => str(description, { pattern: DNS_SUBDOMAIN_PATTERN, minLength: 1, maxLength: 253 });

const keySelector = (what: 'ConfigMap' | 'Secret') =>
  obj(
    `A key of a ${what} in the same namespace.`,
    {
      name: what === 'Secret' ? secretName(`Name of the ${what}.`) : configMapName(`Name of the ${what}.`),
      key: str('The key.', { minLength: 1, maxLength: 253, pattern: '^[-._a-zA-Z0-9]+$' }),
      optional: bool(`Leave the variable unset instead of failing when the ${what} or key is missing.`, {
        default: false,
      }),
    },
    { required: ['name', 'key'] },
  );

export const EnvVar = obj(
  'An environment variable: a literal value, or one key of a ConfigMap or Secret.',
  {
    name: str('Variable name.', { minLength: 1, maxLength: 256, pattern: '^[^=\\s]+$' }),
    value: str('Literal value.', { maxLength: 32768 }),
    valueFrom: obj(
      'Take the value from a ConfigMap or Secret key. Exactly one of configMapKeyRef or secretKeyRef.',
      { configMapKeyRef: keySelector('ConfigMap'), secretKeyRef: keySelector('Secret') },
      { rules: [exactlyOneOf(['configMapKeyRef', 'secretKeyRef'], 'exactly one of valueFrom.configMapKeyRef or valueFrom.secretKeyRef must be set')] },
    ),
  },
  {
    required: ['name'],
    rules: [atMostOneOf(['value', 'valueFrom'], 'env value and valueFrom are mutually exclusive')],
  },
);
export type EnvVar = Infer<typeof EnvVar>;

export const EnvFromSource = obj(
  'Every key of a ConfigMap or Secret becomes a variable. Exactly one of configMapRef or secretRef.',
  {
    prefix: str('Prefix added to every variable name.', { maxLength: 256 }),
    configMapRef: obj(
      'A ConfigMap in the same namespace.',
      {
        name: configMapName('Name of the ConfigMap.'),
        optional: bool('Do not fail when the ConfigMap is missing.', { default: false }),
      },
      { required: ['name'] },
    ),
    secretRef: obj(
      'A Secret in the same namespace.',
      {
        name: secretName('Name of the Secret.'),
        optional: bool('Do not fail when the Secret is missing.', { default: false }),
      },
      { required: ['name'] },
    ),
  },
  { rules: [exactlyOneOf(['configMapRef', 'secretRef'], 'exactly one of envFrom.configMapRef or envFrom.secretRef must be set')] },
);

const KeyToPath = arr(
  'Project only these keys, to these relative paths. Default: every key, as a file named after it.',
  obj(
    'One key projected to a file.',
    {
      key: str('The key.', { minLength: 1, maxLength: 253 }),
      path: str('Relative file path for the key; no `..` element.', { minLength: 1, maxLength: 1024, pattern: '^[^/]' }),
    },
    {
      required: ['key', 'path'],
      rules: [{ rule: "!self.path.matches('(^|/)[.][.](/|$)')", message: 'items.path must not contain a ".." element', fieldPath: '.path' }],
    },
  ),
  { maxItems: 64 },
);

/** A quantity that must be greater than zero (`cpu: '-1'` once meant "no limit"), at most 64 characters (bounds the rule's cost). */
function positiveQuantity(description: string, field: string): Schema<string | number> {
  const q = quantity(description);
  return {
    json: {
      ...q.json,
      maxLength: 64,
      'x-kubernetes-validations': [{ rule: "quantity(string(self)).isGreaterThan(quantity('0'))", message: `${field} must be greater than zero` }],
    },
  };
}

export const Volume = obj(
  'A volume mounted into the container. Exactly one of emptyDir, configMap or secret.',
  {
    name: str('Volume name, unique in the run.', { pattern: DNS_LABEL_PATTERN, minLength: 1, maxLength: 63 }),
    mountPath: str('Absolute path in the container; no `:`, `,` or `..` element.', { pattern: '^/', maxLength: 4096 }),
    readOnly: bool('Mount read-only.', { default: false }),
    emptyDir: obj('A fresh empty directory on the node, deleted with the run.', {
      sizeLimit: positiveQuantity('Largest size the directory may grow to.', 'emptyDir.sizeLimit'),
      medium: enumOf('Storage medium: node disk (empty) or Memory (tmpfs).', ['', 'Memory'] as const),
    }),
    configMap: obj(
      'Files from a ConfigMap in the same namespace.',
      { name: configMapName('Name of the ConfigMap.'), items: KeyToPath, optional: bool('Mount an empty directory when the ConfigMap is missing.') },
      { required: ['name'] },
    ),
    secret: obj(
      'Files from a Secret in the same namespace.',
      { secretName: secretName('Name of the Secret.'), items: KeyToPath, optional: bool('Mount an empty directory when the Secret is missing.') },
      { required: ['secretName'] },
    ),
  },
  {
    required: ['name', 'mountPath'],
    rules: [
      exactlyOneOf(['emptyDir', 'configMap', 'secret'], 'a volume needs exactly one of emptyDir, configMap or secret'),
      { rule: "!self.mountPath.contains(':') && !self.mountPath.contains(',')", message: 'mountPath must not contain ":" or ","', fieldPath: '.mountPath' },
      { rule: "!self.mountPath.matches('(^|/)[.][.](/|$)')", message: 'mountPath must not contain a ".." element', fieldPath: '.mountPath' },
    ],
  },
);
export type Volume = Infer<typeof Volume>;

export const ContainerPort = obj(
  "A container port published on the node (podman's -p hostIP:hostPort:containerPort/protocol).",
  {
    containerPort: int('Port in the container.', { minimum: 1, maximum: 65535, format: 'int32' }),
    hostPort: int('Port bound on the node.', { minimum: 1, maximum: 65535, format: 'int32' }),
    hostIP: str('Node address to bind. Default 127.0.0.1 (the node itself only); 0.0.0.0 binds every address.', {
      default: '127.0.0.1',
      maxLength: 45,
      pattern: '^([0-9]{1,3}(\\.[0-9]{1,3}){3}|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*)$',
    }),
    protocol: enumOf('TCP or UDP.', ['TCP', 'UDP'] as const, { default: 'TCP' }),
  },
  { required: ['containerPort', 'hostPort'] },
);
export type ContainerPort = Infer<typeof ContainerPort>;

export const ContainerRunSpec = obj(
  'The container to run and where.',
  {
    image: imageReference('Image to run; a tag is resolved to a digest once, when the run is pulled.'),
    command: arr('Replaces the image’s ENTRYPOINT.', str('An argument.', { maxLength: 32768 }), { maxItems: 1024 }),
    args: arr('Replaces the image’s CMD.', str('An argument.', { maxLength: 32768 }), { maxItems: 1024 }),
    env: arr('Environment variables, added to (and overriding) the image’s.', EnvVar, {
      listType: 'map',
      mapKeys: ['name'],
      maxItems: 256,
    }),
    envFrom: arr('Variables from whole ConfigMaps and Secrets; env wins on conflicts.', EnvFromSource, { maxItems: 32 }),
    workingDir: str('Working directory; replaces the image’s WorkingDir.', { pattern: '^/', maxLength: 4096 }),
    user: str('User (and group) to run as: uid[:gid] or a name from the image’s /etc/passwd. Default: the image’s USER.', {
      pattern: '^[A-Za-z0-9_][A-Za-z0-9_.-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]*)?$',
      maxLength: 256,
    }),
    resources: obj('Limits enforced through the container’s cgroup.', {
      memory: positiveQuantity('Memory limit, e.g. 256Mi; exceeding it ends the run with reason OOMKilled.', 'resources.memory'),
      cpu: positiveQuantity('CPU limit in cores, e.g. 500m or 2.', 'resources.cpu'),
      pids: int('Maximum number of processes and threads.', { minimum: 1, maximum: 4194304 }),
    }),
    timeout: withRules(duration('Kill the container after this long (reason DeadlineExceeded), at least 1s. Default: no limit.'), [
      { rule: "duration(self) >= duration('1s')", message: 'timeout must be at least 1s' },
    ]),
    nodeName: str('Run on this node; skips scheduling. Mutually exclusive with nodeSelector.', {
      pattern: DNS_SUBDOMAIN_PATTERN,
      maxLength: 253,
    }),
    nodeSelector: NodeSelector,
    network: enumOf(
      'Network namespace: none (loopback only), private (its own namespace whose only route leads to the node’s loopback, through 10.0.2.2; ports may be published) or host (the node’s network). private and host need the privileged level, Namespace label stevedore.dev/containerrun-privileges=privileged.',
      ['none', 'private', 'host'] as const,
      { default: 'none' },
    ),
    ports: arr('Ports published on the node (network private only; needs the privileged level).', ContainerPort, { maxItems: 32 }),
    hostUsers: bool(
      'Run in the node’s user namespace instead of one of the run’s own (uid 0 in the container is then the node’s root). Default false: the run gets 65536 ids of its own. true needs the privileged level (Namespace label stevedore.dev/containerrun-privileges=privileged).',
    ),
    volumes: arr('Volumes mounted into the container.', Volume, { listType: 'map', mapKeys: ['name'], maxItems: 64 }),
    restartPolicy: enumOf('Never: one attempt. OnFailure: retry a failed run, up to backoffLimit times.', ['Never', 'OnFailure'] as const, {
      default: 'Never',
    }),
    backoffLimit: int('Retries before the run fails with reason BackoffLimitExceeded (restartPolicy OnFailure only). Default 3.', {
      minimum: 0,
      maximum: 100,
      format: 'int32',
    }),
    runtime: enumOf('OCI runtime on the node. Default: the node agent’s configured runtime.', ['runc', 'crun'] as const),
    imagePullSecrets: arr('Secrets of type kubernetes.io/dockerconfigjson in the same namespace used to pull the image.', LocalSecretReference, {
      listType: 'map',
      mapKeys: ['name'],
      maxItems: 16,
    }),
  },
  {
    required: ['image'],
    rules: [
      // Like a Pod's, a run's spec is fixed once created: an agent may already be running it.
      { rule: 'self == oldSelf', message: 'spec is immutable: delete the ContainerRun and create a new one' },
      atMostOneOf(['nodeName', 'nodeSelector'], 'nodeName and nodeSelector are mutually exclusive'),
      {
        rule: "!has(self.backoffLimit) || self.restartPolicy == 'OnFailure'",
        message: 'backoffLimit requires restartPolicy OnFailure',
        fieldPath: '.backoffLimit',
      },
      {
        rule: "!has(self.ports) || size(self.ports) == 0 || self.network == 'private'",
        message: 'ports need network: private',
        fieldPath: '.ports',
      },
      {
        rule: '!has(self.ports) || self.ports.all(p, self.ports.exists_one(q, q.hostPort == p.hostPort && q.protocol == p.protocol))',
        message: 'a hostPort may be published once per protocol',
        fieldPath: '.ports',
      },
      {
        rule: '!has(self.volumes) || self.volumes.all(v, self.volumes.exists_one(w, w.mountPath == v.mountPath))',
        message: 'volume mountPaths must be unique',
        fieldPath: '.volumes',
      },
    ],
  },
);
export type ContainerRunSpec = Infer<typeof ContainerRunSpec>;

export const ContainerRunStatus = obj('Observed state of the ContainerRun.', {
  observedGeneration: observedGeneration(),
  phase: enumOf('Where the run is in its life.', CONTAINER_RUN_PHASES),
  conditions: conditions(
    `Ready is True while the container runs and after it succeeded; its reason then matches status.reason. Reasons: ${CONTAINER_RUN_REASONS.join(', ')}.`,
  ),
  lastHandledReconcileAt: lastHandledReconcileAt(),
  nodeName: str('The node the run is bound to; from then on that node’s agent owns this status.', { maxLength: 253 }),
  imageDigest: str('Digest of the image that was pulled and run.', { maxLength: 256 }),
  exitCode: int('Exit code of the last attempt.', { format: 'int32' }),
  signal: str('Signal that ended the last attempt, e.g. SIGKILL.', { maxLength: 16, pattern: '^SIG[A-Z0-9+-]+$' }),
  reason: str(`Why the run is in its phase: ${CONTAINER_RUN_REASONS.join(', ')}, ….`, { maxLength: 256 }),
  message: str('Details for the reason (the error, the violated policy, …).', { maxLength: 32768 }),
  startedAt: dateTime('When the container of the last attempt started.'),
  finishedAt: dateTime('When the container of the last attempt exited.'),
  restartCount: int('Attempts after the first (restartPolicy OnFailure).', { minimum: 0, format: 'int32' }),
  logTail: str('The last 50 lines of the container’s output (stdout and stderr interleaved).', { maxLength: 65536 }),
});
export type ContainerRunStatus = Infer<typeof ContainerRunStatus>;

/**
 * The Namespace label with which a cluster administrator grants the privileged level to the
 * ContainerRuns of one namespace (as Pod Security Admission's `pod-security.kubernetes.io/enforce`):
 * `privileged`, or `restricted` (the default when absent). Tenants bound to a namespaced Role cannot
 * edit their Namespace, so they cannot grant it to themselves.
 */
export const PRIVILEGE_LABEL = 'stevedore.dev/containerrun-privileges';
export const PRIVILEGE_LEVELS = ['restricted', 'privileged'] as const;
export type PrivilegeLevel = (typeof PRIVILEGE_LEVELS)[number];

/** Finalizer that keeps a bound run until its node agent has killed and removed its container. */
export const CONTAINER_RUN_FINALIZER = 'stevedore.dev/containerrun';
export const CONTAINER_RUN_RESOURCE: ResourcePath = { group: GROUP, version: VERSION, plural: 'containerruns' };

/**
 * Node agents announce themselves with one coordination.k8s.io Lease each, named
 * `stevedore-agent-<node>` in the controller's namespace and renewed as a heartbeat. Its labels
 * carry the node's labels (for nodeSelector) plus the two below.
 */
export const AGENT_LEASE_PREFIX = 'stevedore-agent-';
export const AGENT_LABEL = 'stevedore.dev/agent';
export const AGENT_NODE_LABEL = 'stevedore.dev/node';
/**
 * Set to "true" on the Lease of an agent whose node is tainted NoSchedule/NoExecute (condition
 * taints node.kubernetes.io/* aside): the controller schedules no run there; only a run pinned with
 * spec.nodeName in a privileged namespace may go to such a node.
 */
export const AGENT_TAINTED_LABEL = 'stevedore.dev/tainted';

export type ContainerRun = KubeObject<'ContainerRun', ContainerRunSpec, ContainerRunStatus>;

/** Where the run is bound: the user's spec.nodeName, else the controller's choice. */
export function boundNode(run: ContainerRun): string | undefined {
  return run.spec?.nodeName ?? run.status?.nodeName;
}

export const containerRunKind: KindDefinition<ContainerRunSpec, ContainerRunStatus> = {
  kind: 'ContainerRun',
  listKind: 'ContainerRunList',
  plural: 'containerruns',
  singular: 'containerrun',
  shortNames: ['crun'],
  categories: ['stevedore'],
  description: 'ContainerRun runs one container from an image on a node, with the node agent and an OCI runtime (runc or crun), to completion.',
  spec: ContainerRunSpec,
  status: ContainerRunStatus,
  printerColumns: [
    { name: 'Phase', type: 'string', jsonPath: '.status.phase', description: 'Phase of the run.' },
    { name: 'Exit Code', type: 'integer', jsonPath: '.status.exitCode', description: 'Exit code of the last attempt.' },
    ...readyColumns(),
    AGE_COLUMN,
    { name: 'Node', type: 'string', jsonPath: '.status.nodeName', description: 'Node the run is bound to.', priority: 1 },
    { name: 'Image', type: 'string', jsonPath: '.spec.image', description: 'Image.', priority: 1 },
  ],
};
