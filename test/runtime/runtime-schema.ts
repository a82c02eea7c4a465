/**
 * Validation against the OCI runtime-spec JSON Schemas (draft-04), fetched by `make schemas` from the
 * Go module github.com/opencontainers/runtime-spec (`$OCI_RUNTIME_SCHEMA_DIR`), loaded as the
 * image-spec ones are (hack/lib/harness/schema.ts).
 */
import type { ValidateFunction } from 'ajv';
import { schemaFolderValidators } from '../../hack/lib/harness/schema.js';

let validate: ValidateFunction | undefined;

/** Violations of the runtime config.json schema, as readable lines; empty when valid. */
export function runtimeConfigErrors(doc: unknown): string[] {
  validate ??= schemaFolderValidators('runtime-spec')('config-schema.json');
  if (validate(doc)) return [];
  return (validate.errors ?? []).map((e) => `config${e.instancePath || ''}: ${e.message ?? 'invalid'} ${JSON.stringify(e.params)}`);
}
