/**
 * A mirror's private CA (spec.source/destination.registry.caSecretRef): PEM certificates from a
 * Secret of the mirror's own namespace (never another), written for the length of one sync into a
 * private certs.d-style directory (`ca.crt`, mode 0600) that the engine's registry client reads as
 * its --cert-dir. The CA therefore serves this mirror's connections to that registry only: the
 * client pool keys clients by their cert directory. Messages name the Secret and key, never the
 * content.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubeClient } from '../k8s/runtime/client.js';
import { ReconcileError } from '../k8s/runtime/errors.js';
import { getSecret } from './imagemirror-credentials.js';
import { mirrorErrors } from './imagemirror-status.js';

export interface CaSecretRef {
  name: string;
  key?: string;
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/;

/** The PEM CA bundle the Secret names; a missing Secret or key is retried, a key without a certificate stalls. */
export async function caFromSecret(client: KubeClient, namespace: string, ref: CaSecretRef, field: string): Promise<string> {
  const key = ref.key ?? 'ca.crt';
  const where = `Secret ${namespace}/${ref.name} key ${key} (${field})`;
  const secret = await getSecret(client, namespace, ref.name, field);
  const raw = secret.data?.[key];
  if (raw === undefined) throw new ReconcileError('CredentialsNotFound', `${where} does not exist`);
  const pem = Buffer.from(raw, 'base64').toString('utf8');
  if (!PEM_CERT.test(pem)) throw mirrorErrors.stalled('InvalidSpec', `${where} holds no PEM certificate`);
  return pem;
}

/** A private directory holding `ca.crt`, for one sync; `dispose` removes it. */
export async function caDirectory(pem: string): Promise<{ dir: string; dispose: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'stevedore-mirror-ca-'));
  await writeFile(join(dir, 'ca.crt'), pem, { mode: 0o600 });
  return { dir, dispose: () => rm(dir, { recursive: true, force: true }) };
}
