/**
 * Validation against the OCI runtime-spec JSON Schemas (draft-04) in
 * `../shared/reference/oci-runtime-spec-schema`, loaded as test/fixtures/schema.ts loads the image
 * ones: every file under one synthetic base URL keyed by its name, nested `id`s removed.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import AjvDraft04Module from 'ajv-draft-04';
import type { ValidateFunction } from 'ajv';

const AjvDraft04 = AjvDraft04Module.default;
const BASE = 'https://stevedore.test/oci-runtime-spec-schema/';
const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const OCI_RUNTIME_SCHEMA_DIR = join(REPO_ROOT, '..', 'shared', 'reference', 'oci-runtime-spec-schema');

function stripNestedIds(node: unknown, top: boolean): unknown {
  if (Array.isArray(node)) return node.map((n) => stripNestedIds(n, false));
  if (typeof node !== 'object' || node === null) return node;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === 'id' && !top && typeof v === 'string') continue;
    out[k] = k === 'properties' ? Object.fromEntries(Object.entries(v as object).map(([pk, pv]) => [pk, stripNestedIds(pv, false)])) : stripNestedIds(v, false);
  }
  return out;
}

let validate: ValidateFunction | undefined;

function validator(): ValidateFunction {
  if (validate) return validate;
  const ajv = new AjvDraft04({ allErrors: true, strict: false });
  ajv.addFormat('date-time', /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$/);
  ajv.addFormat('uri', (s: string) => URL.canParse(s));
  for (const file of readdirSync(OCI_RUNTIME_SCHEMA_DIR).filter((f) => f.endsWith('.json')).sort()) {
    const doc = JSON.parse(readFileSync(join(OCI_RUNTIME_SCHEMA_DIR, file), 'utf8')) as Record<string, unknown>;
    const schema = stripNestedIds(doc, true) as Record<string, unknown>;
    schema.id = BASE + file;
    delete schema.$schema;
    ajv.addSchema(schema, BASE + file);
  }
  const fn = ajv.getSchema(BASE + 'config-schema.json');
  if (!fn) throw new Error(`config-schema.json not found in ${OCI_RUNTIME_SCHEMA_DIR}`);
  validate = fn;
  return fn;
}

/** Violations of the runtime config.json schema, as readable lines; empty when valid. */
export function runtimeConfigErrors(doc: unknown): string[] {
  const fn = validator();
  if (fn(doc)) return [];
  return (fn.errors ?? []).map((e) => `config${e.instancePath || ''}: ${e.message ?? 'invalid'} ${JSON.stringify(e.params)}`);
}
