/** The run's environment as `KEY=VALUE` strings: envFrom first, then env (which wins), as a Pod's. */
import type { ContainerRunSpec } from '../k8s/api/containerrun.js';
import type { ConfigSources } from './config-sources.js';

const ENV_NAME = /^[^=\s]+$/;

export async function resolveEnv(spec: ContainerRunSpec, sources: ConfigSources): Promise<string[]> {
  const vars = new Map<string, string>();
  for (const from of spec.envFrom ?? []) {
    const keys = from.configMapRef
      ? await sources.required('ConfigMap', from.configMapRef.name, from.configMapRef.optional)
      : from.secretRef
        ? await sources.required('Secret', from.secretRef.name, from.secretRef.optional)
        : new Map<string, Buffer>();
    for (const [k, v] of keys) {
      const name = `${from.prefix ?? ''}${k}`;
      // The kubelet skips keys that are not valid variable names; so do we.
      if (ENV_NAME.test(name)) vars.set(name, v.toString('utf8'));
    }
  }
  for (const e of spec.env ?? []) {
    if (e.valueFrom?.configMapKeyRef) {
      const r = e.valueFrom.configMapKeyRef;
      const v = await sources.key('ConfigMap', r.name, r.key, r.optional);
      if (v !== undefined) vars.set(e.name, v.toString('utf8'));
    } else if (e.valueFrom?.secretKeyRef) {
      const r = e.valueFrom.secretKeyRef;
      const v = await sources.key('Secret', r.name, r.key, r.optional);
      if (v !== undefined) vars.set(e.name, v.toString('utf8'));
    } else {
      vars.set(e.name, e.value ?? '');
    }
  }
  return [...vars].map(([k, v]) => `${k}=${v}`);
}
