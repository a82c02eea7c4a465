/**
 * Helpers of the end-to-end suite on the real node: helm and kubectl as a user runs them, the
 * Stevedore image `make image` built, and polling for a status.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { REPO_ROOT } from '../cli/stevedore.js';
import { cacheDir } from '../../hack/lib/harness/controlplane.js';
import type { LocalNode } from '../../hack/lib/harness/node.js';
import { runChecked } from '../../hack/lib/harness/procs.js';

/** The helm that hack/helm.mk builds. */
export function helmPath(): string {
  if (process.env['HELM']) return process.env['HELM'];
  const version = /^HELM_VERSION\s*:?=\s*(v\S+)/m.exec(readFileSync(join(REPO_ROOT, 'hack', 'helm.mk'), 'utf8'))![1]!;
  return join(process.env['STEVEDORE_CACHE'] || join(homedir(), '.cache', 'stevedore'), 'bin', `helm-${version}`);
}

/** The OCI layout `make image` writes (hack/image/build.sh's default IMAGE). */
export function builtImageLayout(): string {
  const layout = join(cacheDir(), 'image', 'out');
  if (!existsSync(join(layout, 'index.json'))) throw new Error(`no Stevedore image at ${layout}: run \`make image\` first (make test-e2e-local does)`);
  return `oci:${layout}:stevedore`;
}

export async function helm(node: LocalNode, args: string[], timeoutMs = 300_000): Promise<string> {
  return (await runChecked(helmPath(), ['--kubeconfig', node.kubeconfigPath, ...args], { timeoutMs })).stdout;
}

/** `kubectl get -o json` of one object, or undefined when it does not exist. */
export async function getJson<T = Record<string, unknown>>(node: LocalNode, args: string[]): Promise<T | undefined> {
  try {
    return JSON.parse(await node.kubectl(['get', ...args, '-o', 'json'])) as T;
  } catch (err) {
    if (/NotFound|not found/.test((err as Error).message)) return undefined;
    throw err;
  }
}

export function docs(yamlText: string): Record<string, unknown>[] {
  return parseAllDocuments(yamlText)
    .map((d) => d.toJS() as Record<string, unknown> | null)
    .filter((d): d is Record<string, unknown> => !!d);
}

export async function poll<T>(what: string, get: () => Promise<T>, done: (v: T) => boolean, timeoutMs: number, explain?: () => Promise<string>): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: T | undefined;
  for (;;) {
    last = await get();
    if (done(last)) return last;
    if (Date.now() > until) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}; last: ${JSON.stringify(last, null, 1)?.slice(0, 4000)}${explain ? `\n${await explain()}` : ''}`,
      );
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

export interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

export function condition(obj: { status?: { conditions?: Condition[] } } | undefined, type = 'Ready'): Condition | undefined {
  return obj?.status?.conditions?.find((c) => c.type === type);
}
