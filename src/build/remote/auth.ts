/**
 * Merges docker config files (mounted dockerconfigjson Secrets) into one auth file, for a builder
 * that takes a single --authfile. Later files win for the same registry key.
 */
import { readFile } from 'node:fs/promises';
import { parseDockerConfig, type DockerConfig } from '../../registry/credentials.js';
import { writeFileAtomic } from '../../util/fs.js';

export async function mergeAuthFiles(out: string, inputs: readonly string[]): Promise<number> {
  const merged: Required<Pick<DockerConfig, 'auths'>> = { auths: {} };
  for (const file of inputs) {
    const doc = parseDockerConfig(await readFile(file, 'utf8'), file);
    Object.assign(merged.auths, doc.auths ?? {});
  }
  await writeFileAtomic(out, JSON.stringify(merged), 0o600);
  return Object.keys(merged.auths).length;
}
