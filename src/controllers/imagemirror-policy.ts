/**
 * spec.policy of an ImageMirror: a containers-policy.json in a Secret of the mirror's own
 * namespace. Key paths in the policy name other keys of that Secret, so a policy written for a
 * cluster never reads a file of the controller (which would let any namespace probe its files).
 */
import { isNotFound, type KubeClient } from '../k8s/runtime/client.js';
import type { ImageMirrorSpec } from '../k8s/api/imagemirror.js';
import { parsePolicy } from '../policy/parse.js';
import type { Policy, PolicyRequirement } from '../policy/types.js';
import { errorMessage } from '../util/errors.js';
import { mirrorErrors } from './imagemirror-status.js';

interface Secret {
  data?: Record<string, string>;
}

export const DEFAULT_POLICY_KEY = 'policy.json';

/** Reads, parses and resolves the policy; undefined when the mirror names none. */
export async function policyFromSecret(client: KubeClient, namespace: string, ref: NonNullable<ImageMirrorSpec['policy']>): Promise<Policy> {
  const name = ref.secretRef.name;
  const key = ref.secretRef.key ?? DEFAULT_POLICY_KEY;
  const where = `Secret ${namespace}/${name}`;
  let secret: Secret;
  try {
    secret = await client.get<Secret>(`/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets/${encodeURIComponent(name)}`);
  } catch (err) {
    // It may be created after the mirror: retried with backoff.
    if (isNotFound(err)) throw mirrorErrors.failed('PolicyNotFound', `spec.policy: ${where} not found`);
    throw err;
  }
  const data = secret.data ?? {};
  const raw = data[key];
  if (raw === undefined) {
    throw mirrorErrors.failed('PolicyNotFound', `spec.policy: ${where} has no key "${key}" (keys: ${Object.keys(data).sort().join(', ') || 'none'})`);
  }
  const source = `spec.policy (${where} key ${key})`;
  try {
    const policy = parsePolicy(Buffer.from(raw, 'base64').toString('utf8'), source);
    return resolveKeyPaths(policy, data, where);
  } catch (err) {
    throw mirrorErrors.stalled('InvalidPolicy', errorMessage(err));
  }
}

/** Replaces every *Path of the policy by the bytes of the Secret key it names. */
export function resolveKeyPaths(policy: Policy, data: Record<string, string>, where: string): Policy {
  const read = (path: string, at: string): Buffer => {
    const raw = Object.hasOwn(data, path) ? data[path] : undefined;
    if (raw === undefined) {
      throw new Error(
        `${at}: "${path}" is not a key of ${where} (keys: ${Object.keys(data).sort().join(', ') || 'none'}); in an ImageMirror policy, key paths name keys of the policy's Secret, not files`,
      );
    }
    return Buffer.from(raw, 'base64');
  };
  const resolve = (r: PolicyRequirement, at: string): PolicyRequirement => {
    if (r.type === 'sigstoreSigned') {
      const out = { ...r };
      if (out.keyPath !== undefined) {
        out.keyData = read(out.keyPath, `${at}.keyPath`);
        delete out.keyPath;
      }
      if (out.keyPaths !== undefined) {
        out.keyDatas = out.keyPaths.map((p, i) => read(p, `${at}.keyPaths[${i}]`));
        delete out.keyPaths;
      }
      if (out.rekorPublicKeyPath !== undefined) {
        out.rekorPublicKeyData = read(out.rekorPublicKeyPath, `${at}.rekorPublicKeyPath`);
        delete out.rekorPublicKeyPath;
      }
      if (out.rekorPublicKeyPaths !== undefined) {
        out.rekorPublicKeyDatas = out.rekorPublicKeyPaths.map((p, i) => read(p, `${at}.rekorPublicKeyPaths[${i}]`));
        delete out.rekorPublicKeyPaths;
      }
      if (out.fulcio?.caPath !== undefined) {
        const { caPath, ...rest } = out.fulcio;
        out.fulcio = { ...rest, caData: read(caPath, `${at}.fulcio.caPath`) };
      }
      return out;
    }
    if (r.type === 'signedBy') {
      const out = { ...r };
      if (out.keyPath !== undefined) {
        out.keyData = read(out.keyPath, `${at}.keyPath`);
        delete out.keyPath;
      }
      if (out.keyPaths !== undefined) {
        // GPG keyrings concatenate; the evaluator takes one keyData.
        out.keyData = Buffer.concat(out.keyPaths.map((p, i) => read(p, `${at}.keyPaths[${i}]`)));
        delete out.keyPaths;
      }
      return out;
    }
    return r;
  };
  const list = (rs: PolicyRequirement[], at: string) => rs.map((r, i) => resolve(r, `${at}[${i}]`));
  const transports: Policy['transports'] = {};
  for (const [t, scopes] of Object.entries(policy.transports)) {
    transports[t] = {};
    for (const [scope, rs] of Object.entries(scopes)) transports[t][scope] = list(rs, `transports.${t}[${JSON.stringify(scope)}]`);
  }
  return { default: list(policy.default, 'default'), transports };
}
