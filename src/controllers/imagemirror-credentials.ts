/**
 * Registry credentials from kubernetes.io/dockerconfigjson Secrets in the object's own namespace
 * (never another). A missing or unusable Secret is retried: it may be created or fixed later.
 * Messages name the Secret and the JSON path of a fault, never the Secret's text: it holds passwords.
 */
import { ApiError, isNotFound, type KubeClient } from '../k8s/runtime/client.js';
import { ReconcileError } from '../k8s/runtime/errors.js';
import { lookupCredentials, parseDockerConfig, type Credentials, type DockerConfig } from '../registry/credentials.js';
import { InvalidInputError } from '../util/errors.js';

export interface Secret {
  type?: string;
  data?: Record<string, string>;
}

export const DOCKER_CONFIG_SECRET_TYPE = 'kubernetes.io/dockerconfigjson';

export async function getSecret(client: KubeClient, namespace: string, secretName: string, role?: string): Promise<Secret> {
  try {
    return await client.get<Secret>(`/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets/${encodeURIComponent(secretName)}`);
  } catch (err) {
    if (isNotFound(err)) throw new ReconcileError('CredentialsNotFound', `Secret ${namespace}/${secretName}${role ? ` (${role})` : ''} not found`);
    // The controller reads Secrets only where an administrator opted the namespace in: say so.
    if (err instanceof ApiError && err.status === 403) {
      throw new ReconcileError(
        'CredentialsNotFound',
        `Secret ${namespace}/${secretName}${role ? ` (${role})` : ''} is not readable: the controller may read Secrets only in namespaces an administrator opted in (chart value tenantNamespaces)`,
      );
    }
    throw err;
  }
}

/** The Secret's `.dockerconfigjson`, checked: the type, the key, JSON, an `auths` object, each entry's fields. */
export function dockerConfigFromSecret(secret: Secret, where: string): DockerConfig {
  if (secret.type !== DOCKER_CONFIG_SECRET_TYPE) {
    throw new ReconcileError('CredentialsNotFound', `${where} has type ${secret.type ?? '(none)'}; expected ${DOCKER_CONFIG_SECRET_TYPE}`);
  }
  const raw = secret.data?.['.dockerconfigjson'];
  if (!raw) throw new ReconcileError('CredentialsNotFound', `${where} has no .dockerconfigjson key`);
  const source = `${where} key .dockerconfigjson`;
  try {
    const config = parseDockerConfig(Buffer.from(raw, 'base64').toString('utf8'), source);
    if (config.auths === undefined) throw new InvalidInputError(`${source}: no "auths" object`);
    // Decode every entry now, so a malformed one is reported here (by path) whichever registry is asked.
    for (const key of Object.keys(config.auths)) lookupCredentials({ auths: { [key]: config.auths[key]! } }, key, undefined, source);
    return config;
  } catch (err) {
    // The engine's InvalidInputError messages name paths only; anything else is not passed on.
    throw new ReconcileError('CredentialsNotFound', err instanceof InvalidInputError ? err.message : `${source}: unreadable`);
  }
}

export async function credentialsFromSecret(
  client: KubeClient,
  namespace: string,
  secretName: string,
  registry: string,
  repository: string,
): Promise<Credentials> {
  const where = `Secret ${namespace}/${secretName}`;
  const config = dockerConfigFromSecret(await getSecret(client, namespace, secretName), where);
  let creds: Credentials | undefined;
  try {
    creds = lookupCredentials(config, registry, repository, `${where} key .dockerconfigjson`);
  } catch (err) {
    throw new ReconcileError('CredentialsNotFound', err instanceof InvalidInputError ? err.message : `${where}: unreadable`);
  }
  if (!creds) throw new ReconcileError('CredentialsNotFound', `${where} has no credentials for ${registry}/${repository}`);
  return creds;
}
