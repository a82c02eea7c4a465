import type { V1ObjectMeta } from '@kubernetes/client-node';
import { DNS_SUBDOMAIN_PATTERN, arr, bool, dateTime, enumOf, int, obj, quantity, record, str, type Infer, type Schema } from './schema.js';

export const GROUP = 'stevedore.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}` as const;

/** Annotation that asks for an immediate reconcile; its value (any string, usually a timestamp) is echoed in `status.lastHandledReconcileAt`. */
export const RECONCILE_REQUESTED_AT_ANNOTATION = 'reconcile.stevedore.dev/requestedAt';

/** The kstatus condition types. `Ready` is always present; `Reconciling` and `Stalled` only while true. */
export const CONDITION_TYPES = ['Ready', 'Reconciling', 'Stalled'] as const;
export type ConditionType = (typeof CONDITION_TYPES)[number];

export function secretName(description: string): Schema<string> {
  return str(description, { pattern: DNS_SUBDOMAIN_PATTERN, minLength: 1, maxLength: 253 });
}

/** A reference to a Secret in the object's own namespace (there is deliberately no namespace field). */
export const LocalSecretReference = obj(
  'A Secret in the same namespace as this object. Stevedore never reads Secrets from other namespaces.',
  { name: secretName('Name of the Secret.') },
  { required: ['name'] },
);
export type LocalSecretReference = Infer<typeof LocalSecretReference>;

export function dockerConfigSecretRef(what: string): Schema<LocalSecretReference> {
  return obj(
    `${what} A Secret of type kubernetes.io/dockerconfigjson (key .dockerconfigjson) in the same namespace as this object.`,
    { name: secretName('Name of the Secret.') },
    { required: ['name'] },
  );
}

/** An OCI image reference: `registry/repository[:tag][@digest]`. */
export function imageReference(description: string): Schema<string> {
  return str(description, { minLength: 1, maxLength: 1024, pattern: '^[^\\s]+$' });
}

/** A repository without tag or digest: `registry.example.com/team/app`. */
export function repository(description: string): Schema<string> {
  return str(description, {
    minLength: 1,
    maxLength: 512,
    pattern: '^[a-zA-Z0-9][a-zA-Z0-9._-]*(:[0-9]+)?(/[a-z0-9]+([._-]+[a-z0-9]+)*)*$',
  });
}

/** A platform `os/arch[/variant]`, e.g. `linux/amd64`, `linux/arm64/v8`. */
export const Platform = str('A platform as os/architecture[/variant], for example linux/amd64 or linux/arm/v7.', {
  pattern: '^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?$',
  maxLength: 64,
});

export const Condition = obj(
  'A kstatus condition (same shape as metav1.Condition).',
  {
    type: str('Condition type: Ready, Reconciling or Stalled.', { maxLength: 316, minLength: 1 }),
    status: enumOf('Status of the condition.', ['True', 'False', 'Unknown'] as const),
    observedGeneration: int('The metadata.generation the condition was computed from.', { minimum: 0 }),
    lastTransitionTime: dateTime('When the condition last changed status.'),
    reason: str('A CamelCase reason from the kind’s vocabulary (listed in status.conditions).', {
      maxLength: 1024,
      minLength: 1,
      pattern: '^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$',
    }),
    message: str('A human-readable explanation.', { maxLength: 32768 }),
  },
  { required: ['type', 'status', 'lastTransitionTime', 'reason', 'message'] },
);
export type Condition = Infer<typeof Condition>;

export function conditions(reasons: string): Schema<Condition[]> {
  return arr(`kstatus conditions. Ready is always present; Reconciling and Stalled only while true. ${reasons}`, Condition, {
    listType: 'map',
    mapKeys: ['type'],
    maxItems: 8,
  });
}

export function observedGeneration(): Schema<number> {
  return int('The metadata.generation the controller last acted on.', { minimum: 0 });
}

export function lastHandledReconcileAt(): Schema<string> {
  return str(`The value of the ${RECONCILE_REQUESTED_AT_ANNOTATION} annotation the controller last handled.`, {
    maxLength: 256,
  });
}

export const ResourceList = record('Amounts per resource name (cpu, memory, ephemeral-storage, …).', quantity('An amount of a resource.'), {
  maxProperties: 16,
});

export const ResourceRequirements = obj('Compute resources for the build Pod (as core/v1 ResourceRequirements).', {
  limits: ResourceList,
  requests: ResourceList,
});
export type ResourceRequirements = Infer<typeof ResourceRequirements>;

export const NodeSelector = record('Node labels the Pod must match (as Pod spec.nodeSelector).', str('Label value.', { maxLength: 63 }), { maxProperties: 32 });

export const Toleration = obj('A toleration (as core/v1 Toleration).', {
  key: str('Taint key the toleration applies to; empty with operator Exists matches every taint.', { maxLength: 316 }),
  operator: enumOf('How key and value are compared.', ['Exists', 'Equal'] as const),
  value: str('Taint value the toleration matches (operator Equal).', { maxLength: 63 }),
  effect: enumOf('Taint effect to match; empty matches all effects.', ['NoSchedule', 'PreferNoSchedule', 'NoExecute'] as const),
  tolerationSeconds: int('For NoExecute: how long the Pod stays bound after the taint appears.'),
});
export type Toleration = Infer<typeof Toleration>;

export const Tolerations = arr('Tolerations for the Pod.', Toleration, { maxItems: 32 });

export const Suspend = bool('Stop scheduling new work for this object; work in progress finishes.', { default: false });

/** The common shape of a Stevedore object, generic over its kind, spec and status. */
export interface KubeObject<K extends string, Spec, Status> {
  apiVersion: typeof API_VERSION;
  kind: K;
  metadata: V1ObjectMeta;
  spec: Spec;
  status?: Status;
}

export interface KubeList<T> {
  apiVersion: typeof API_VERSION;
  kind: string;
  metadata: { resourceVersion?: string; continue?: string };
  items: T[];
}
