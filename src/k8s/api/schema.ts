/**
 * A small schema builder: each API field is written once, and yields both its TypeScript type
 * (`Infer<typeof s>`) and its OpenAPI v3 schema for the CRD (`s.json`). Every builder takes a
 * description first, so no field can reach the CRD undocumented.
 */

/** The subset of apiextensions.k8s.io/v1 JSONSchemaProps that Stevedore's CRDs use. */
export interface JSONSchemaProps {
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  description?: string;
  format?: string;
  pattern?: string;
  enum?: readonly (string | number)[];
  default?: unknown;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  minProperties?: number;
  maxProperties?: number;
  properties?: Record<string, JSONSchemaProps>;
  required?: string[];
  items?: JSONSchemaProps;
  additionalProperties?: JSONSchemaProps;
  anyOf?: JSONSchemaProps[];
  'x-kubernetes-validations'?: ValidationRule[];
  'x-kubernetes-int-or-string'?: true;
  'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  'x-kubernetes-list-map-keys'?: string[];
  'x-kubernetes-map-type'?: 'atomic' | 'granular';
  'x-kubernetes-preserve-unknown-fields'?: true;
}

/** A CEL rule (`x-kubernetes-validations`); `message` is what the API server returns on violation. */
export interface ValidationRule {
  rule: string;
  message: string;
  /** Path of the offending field relative to the rule's object, e.g. `.cron`. */
  fieldPath?: string;
  reason?: 'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueRequired' | 'FieldValueDuplicate';
}

/**
 * A schema for values of type `T`. `T` exists only at compile time (the phantom `__type`), the JSON
 * is what goes into the CRD.
 */
export interface Schema<T> {
  readonly json: JSONSchemaProps;
  /** Phantom member carrying the TypeScript type; never set. */
  readonly __type?: T;
}

export type Infer<S> = S extends Schema<infer T> ? T : never;

type Simplify<T> = { [K in keyof T]: T[K] } & {};

type Props = Record<string, Schema<unknown>>;

type ObjectOf<P extends Props, R extends keyof P> = Simplify<{ [K in R]: Infer<P[K]> } & { [K in Exclude<keyof P, R>]?: Infer<P[K]> }>;

/** Go `time.Duration` syntax as Kubernetes APIs write it: `90s`, `5m`, `1h30m`. */
export const DURATION_PATTERN = '^([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$';

/** A DNS-1123 subdomain: the names of Secrets, ConfigMaps, PVCs and Nodes. */
export const DNS_SUBDOMAIN_PATTERN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$';

/** A DNS-1123 label: volume names, container-level names. */
export const DNS_LABEL_PATTERN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$';

function make<T>(json: JSONSchemaProps): Schema<T> {
  return { json };
}

function compact(json: JSONSchemaProps): JSONSchemaProps {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(json)) if (v !== undefined) out[k] = v;
  return out as JSONSchemaProps;
}

export interface StringOptions {
  pattern?: string;
  format?: 'date-time' | 'byte' | 'uri' | 'hostname';
  minLength?: number;
  maxLength?: number;
  default?: string;
}

export function str(description: string, opts: StringOptions = {}): Schema<string> {
  return make(compact({ type: 'string', description, ...opts }));
}

export interface NumberOptions {
  minimum?: number;
  maximum?: number;
  default?: number;
  format?: 'int32' | 'int64';
}

export function int(description: string, opts: NumberOptions = {}): Schema<number> {
  return make(compact({ type: 'integer', description, format: opts.format ?? 'int64', ...opts }));
}

export function bool(description: string, opts: { default?: boolean } = {}): Schema<boolean> {
  return make(compact({ type: 'boolean', description, ...opts }));
}

/** An RFC 3339 timestamp, as metav1.Time serialises. */
export function dateTime(description: string): Schema<string> {
  return str(description, { format: 'date-time' });
}

/** A Go duration string (`30s`, `10m`, `1h30m`). */
export function duration(description: string, opts: { default?: string } = {}): Schema<string> {
  return str(description, { pattern: DURATION_PATTERN, maxLength: 64, ...opts });
}

/** A resource quantity (`512Mi`, `0.5`, `2`), written as a string or a number like resource.Quantity. */
export function quantity(description: string): Schema<string | number> {
  return make({
    description,
    anyOf: [{ type: 'integer' }, { type: 'string' }],
    'x-kubernetes-int-or-string': true,
    pattern: '^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$',
  });
}

export function enumOf<const V extends readonly string[]>(description: string, values: V, opts: { default?: V[number] } = {}): Schema<V[number]> {
  return make(compact({ type: 'string', description, enum: values, ...opts }));
}

export interface ArrayOptions {
  minItems?: number;
  maxItems?: number;
  /** `set` for scalars that must be unique; `map` with `mapKeys` for objects keyed by a field. */
  listType?: 'atomic' | 'set' | 'map';
  mapKeys?: string[];
  rules?: ValidationRule[];
}

export function arr<T>(description: string, items: Schema<T>, opts: ArrayOptions = {}): Schema<T[]> {
  return make(
    compact({
      type: 'array',
      description,
      items: items.json,
      minItems: opts.minItems,
      maxItems: opts.maxItems,
      'x-kubernetes-list-type': opts.listType,
      'x-kubernetes-list-map-keys': opts.mapKeys,
      'x-kubernetes-validations': opts.rules,
    }),
  );
}

/** A string-keyed map (`additionalProperties`), e.g. a node selector. */
export function record<T>(description: string, values: Schema<T>, opts: { maxProperties?: number; rules?: ValidationRule[] } = {}): Schema<Record<string, T>> {
  return make(
    compact({
      type: 'object',
      description,
      additionalProperties: values.json,
      maxProperties: opts.maxProperties,
      'x-kubernetes-validations': opts.rules,
    }),
  );
}

export interface ObjectOptions<R> {
  /** Fields that must be present; everything else is optional (and `?:` in the TypeScript type). */
  required?: R;
  /** Cross-field CEL rules evaluated with `self` bound to this object. */
  rules?: ValidationRule[];
  minProperties?: number;
}

export function obj<P extends Props, const R extends readonly (keyof P & string)[] = []>(
  description: string,
  properties: P,
  opts: ObjectOptions<R> = {},
): Schema<ObjectOf<P, R[number]>> {
  const props: Record<string, JSONSchemaProps> = {};
  for (const [name, schema] of Object.entries(properties)) props[name] = schema.json;
  return make(
    compact({
      type: 'object',
      description,
      properties: props,
      required: opts.required && opts.required.length > 0 ? [...opts.required] : undefined,
      minProperties: opts.minProperties,
      'x-kubernetes-validations': opts.rules,
    }),
  );
}

/** The same schema with a different description (for reusing a shape under another field). */
export function describe<T>(description: string, schema: Schema<T>): Schema<T> {
  return make({ ...schema.json, description });
}

/** The same schema with extra CEL rules. */
export function withRules<T>(schema: Schema<T>, rules: ValidationRule[]): Schema<T> {
  return make({ ...schema.json, 'x-kubernetes-validations': [...(schema.json['x-kubernetes-validations'] ?? []), ...rules] });
}

/** CEL: exactly one of the named optional fields of `self` is set. */
export function exactlyOneOf(fields: readonly string[], message?: string): ValidationRule {
  return {
    rule: fields.map((f) => `(has(self.${f}) ? 1 : 0)`).join(' + ') + ' == 1',
    message: message ?? `exactly one of ${fields.join(', ')} must be set`,
  };
}

/** CEL: at most one of the named optional fields of `self` is set. */
export function atMostOneOf(fields: readonly string[], message?: string): ValidationRule {
  return {
    rule: fields.map((f) => `(has(self.${f}) ? 1 : 0)`).join(' + ') + ' <= 1',
    message: message ?? `at most one of ${fields.join(', ')} may be set`,
  };
}
