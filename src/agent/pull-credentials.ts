/**
 * Registry credentials for a run's image from its imagePullSecrets (kubernetes.io/dockerconfigjson
 * Secrets in the run's own namespace), tried in order as the kubelet does; the first Secret with an
 * entry for the image's registry wins. None: an anonymous pull.
 */
import { parseReference } from '../oci/reference.js';
import { lookupCredentials, parseDockerConfig, type Credentials } from '../registry/credentials.js';
import type { ConfigSources } from './config-sources.js';

export async function pullCredentials(
  image: string,
  secrets: readonly { name: string }[] | undefined,
  sources: ConfigSources,
): Promise<Credentials | undefined> {
  if (!secrets || secrets.length === 0) return undefined;
  const ref = parseReference(image.replace(/^docker:\/\//, ''));
  for (const s of secrets) {
    const keys = await sources.keys('Secret', s.name);
    const raw = keys?.get('.dockerconfigjson') ?? keys?.get('.dockercfg');
    if (!raw) continue; // a missing or foreign Secret is skipped, as the kubelet does
    const where = `Secret ${s.name}`;
    const creds = lookupCredentials(parseDockerConfig(raw.toString('utf8'), where), ref.registry, ref.repository, where);
    if (creds) return creds;
  }
  return undefined;
}
