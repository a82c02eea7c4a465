/**
 * Validation against the OCI runtime-spec JSON Schemas (draft-04) in
 * `../shared/reference/oci-runtime-spec-schema`, loaded as the image-spec ones are.
 */
import type { ValidateFunction } from 'ajv';
import { schemaFolderValidators } from '../fixtures/schema.js';

let validate: ValidateFunction | undefined;

/** Violations of the runtime config.json schema, as readable lines; empty when valid. */
export function runtimeConfigErrors(doc: unknown): string[] {
  validate ??= schemaFolderValidators('oci-runtime-spec-schema')('config-schema.json');
  if (validate(doc)) return [];
  return (validate.errors ?? []).map((e) => `config${e.instancePath || ''}: ${e.message ?? 'invalid'} ${JSON.stringify(e.params)}`);
}
