/**
 * ConfigMaps and Secrets a run refers to (env, envFrom, volumes), read one by one from the run's
 * own namespace — never another, never listed.
 */
import { isNotFound, type KubeClient } from '../k8s/runtime/client.js';

/**
 * A referenced ConfigMap, Secret or key is missing (and not optional): the run cannot start yet
 * (CreateContainerConfigError, looked at again later). InvalidSpec: the spec itself can never be
 * carried out (a key path leaving its volume): final, never retried.
 */
export class ConfigSourceError extends Error {
  readonly reason: 'CreateContainerConfigError' | 'InvalidSpec';
  constructor(message: string, reason: 'CreateContainerConfigError' | 'InvalidSpec' = 'CreateContainerConfigError') {
    super(message);
    this.reason = reason;
    this.name = 'ConfigSourceError';
  }
}

export type SourceKind = 'ConfigMap' | 'Secret';

interface ConfigMapObject {
  data?: Record<string, string>;
  binaryData?: Record<string, string>;
}
interface SecretObject {
  data?: Record<string, string>;
}

/** Reads each referenced object once per start and keeps its keys decoded as bytes. */
export class ConfigSources {
  readonly #client: KubeClient;
  readonly #namespace: string;
  readonly #cache = new Map<string, Map<string, Buffer> | undefined>();

  constructor(client: KubeClient, namespace: string) {
    this.#client = client;
    this.#namespace = namespace;
  }

  /** All keys of the object, or undefined when it does not exist. */
  async keys(kind: SourceKind, name: string): Promise<Map<string, Buffer> | undefined> {
    const cacheKey = `${kind}/${name}`;
    if (this.#cache.has(cacheKey)) return this.#cache.get(cacheKey);
    const ns = encodeURIComponent(this.#namespace);
    const path = `/api/v1/namespaces/${ns}/${kind === 'ConfigMap' ? 'configmaps' : 'secrets'}/${encodeURIComponent(name)}`;
    let out: Map<string, Buffer> | undefined;
    try {
      const obj = await this.#client.get<ConfigMapObject & SecretObject>(path);
      out = new Map();
      if (kind === 'ConfigMap') {
        for (const [k, v] of Object.entries(obj.data ?? {})) out.set(k, Buffer.from(v, 'utf8'));
        for (const [k, v] of Object.entries(obj.binaryData ?? {})) out.set(k, Buffer.from(v, 'base64'));
      } else {
        for (const [k, v] of Object.entries(obj.data ?? {})) out.set(k, Buffer.from(v, 'base64'));
      }
    } catch (err) {
      if (!isNotFound(err)) throw err;
      out = undefined;
    }
    this.#cache.set(cacheKey, out);
    return out;
  }

  /** Required objects fail with a message naming the object; optional ones give an empty map. */
  async required(kind: SourceKind, name: string, optional: boolean | undefined): Promise<Map<string, Buffer>> {
    const keys = await this.keys(kind, name);
    if (keys) return keys;
    if (optional) return new Map();
    throw new ConfigSourceError(`${kind} ${this.#namespace}/${name} not found`);
  }

  /** One key; undefined when optional and missing. */
  async key(kind: SourceKind, name: string, key: string, optional: boolean | undefined): Promise<Buffer | undefined> {
    const keys = await this.required(kind, name, optional);
    const value = keys.get(key);
    if (value !== undefined || optional) return value;
    throw new ConfigSourceError(`${kind} ${this.#namespace}/${name} has no key "${key}"`);
  }
}
