/**
 * Registry credentials from kubernetes.io/dockerconfigjson Secrets in the ImageMirror's own
 * namespace (never another). A missing or unusable Secret is retried: it may be created later.
 */
import { isNotFound, type KubeClient } from '../k8s/runtime/client.js';
import { ReconcileError } from '../k8s/runtime/errors.js';
import { lookupCredentials, parseDockerConfig, type Credentials } from '../registry/credentials.js';

interface Secret {
  type?: string;
  data?: Record<string, string>;
}

export async function credentialsFromSecret(
  client: KubeClient,
  namespace: string,
  secretName: string,
  registry: string,
  repository: string,
): Promise<Credentials> {
  const where = `Secret ${namespace}/${secretName}`;
  let secret: Secret;
  try {
    secret = await client.get<Secret>(`/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets/${encodeURIComponent(secretName)}`);
  } catch (err) {
    if (isNotFound(err)) throw new ReconcileError('CredentialsNotFound', `${where} not found`);
    throw err;
  }
  if (secret.type !== 'kubernetes.io/dockerconfigjson') {
    throw new ReconcileError('CredentialsNotFound', `${where} has type ${secret.type ?? '(none)'}; expected kubernetes.io/dockerconfigjson`);
  }
  const raw = secret.data?.['.dockerconfigjson'];
  if (!raw) throw new ReconcileError('CredentialsNotFound', `${where} has no .dockerconfigjson key`);
  let creds: Credentials | undefined;
  try {
    creds = lookupCredentials(parseDockerConfig(Buffer.from(raw, 'base64').toString('utf8'), where), registry, repository, where);
  } catch (err) {
    throw new ReconcileError('CredentialsNotFound', (err as Error).message);
  }
  if (!creds) throw new ReconcileError('CredentialsNotFound', `${where} has no credentials for ${registry}/${repository}`);
  return creds;
}
