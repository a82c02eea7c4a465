import type { FoundPackage } from './found.js';

/** `…/node_modules/<name>/package.json` or `…/node_modules/@scope/<name>/package.json`. */
export function isNpmPackageJson(path: string): boolean {
  return /(^|\/)node_modules\/(@[^/]+\/)?[^/@][^/]*\/package\.json$/.test(path);
}

/** A `package-lock.json` (v1-v3); npm's hidden `node_modules/.package-lock.json` duplicates the packages themselves. */
export function isNpmLockfile(path: string): boolean {
  return /(^|\/)package-lock\.json$/.test(path) && !path.endsWith('node_modules/.package-lock.json');
}

/** License of a package.json: an SPDX expression string, `{type}`, or the old `licenses: [{type}]`. */
function licensesOf(doc: Record<string, unknown>): string[] {
  const out: string[] = [];
  const one = (v: unknown): void => {
    if (typeof v === 'string' && v.trim() !== '') out.push(v.trim());
    else if (typeof v === 'object' && v !== null && typeof (v as { type?: unknown }).type === 'string') out.push((v as { type: string }).type);
  };
  one(doc.license);
  if (Array.isArray(doc.licenses)) doc.licenses.forEach(one);
  return out;
}

function parseJson(text: string): Record<string, unknown> | undefined {
  try {
    const doc = JSON.parse(text) as unknown;
    return typeof doc === 'object' && doc !== null && !Array.isArray(doc) ? (doc as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The package an installed package.json describes; nested package.json files without name and version are not packages. */
export function parseNpmPackageJson(text: string): FoundPackage[] {
  const doc = parseJson(text);
  if (!doc || typeof doc.name !== 'string' || typeof doc.version !== 'string' || doc.name === '' || doc.version === '') return [];
  return [{ type: 'npm', name: doc.name, version: doc.version, licenses: licensesOf(doc), foundBy: 'npm-package' }];
}

/** npm's names for OCI architectures (process.arch values). */
const NODE_CPU: Record<string, string> = {
  amd64: 'x64',
  '386': 'ia32',
  arm64: 'arm64',
  arm: 'arm',
  ppc64le: 'ppc64',
  s390x: 's390x',
  riscv64: 'riscv64',
  loong64: 'loong64',
};

/** npm's `os`/`cpu` fields: a list of allowed values, or `!value` exclusions. */
function allows(list: unknown, value: string | undefined): boolean {
  if (!Array.isArray(list) || list.length === 0 || value === undefined) return true;
  const items = list.filter((x): x is string => typeof x === 'string');
  if (items.includes(`!${value}`)) return false;
  const positive = items.filter((x) => !x.startsWith('!'));
  return positive.length === 0 || positive.includes(value);
}

/**
 * Packages a lockfile pins. v2/v3 list them under `packages` keyed by install path (the root
 * project is the `""` key and is not a dependency; `link: true` entries are workspace symlinks;
 * optional packages restricted to another `os`/`cpu` than the image's are not installed there);
 * v1 nests them under `dependencies`.
 */
export function parseNpmLockfile(text: string, platform?: { os: string; architecture: string }): FoundPackage[] {
  const os = platform?.os;
  const cpu = platform ? (NODE_CPU[platform.architecture] ?? platform.architecture) : undefined;
  const doc = parseJson(text);
  if (!doc) return [];
  const out: FoundPackage[] = [];
  const packages = doc.packages;
  if (typeof packages === 'object' && packages !== null) {
    for (const [key, raw] of Object.entries(packages as Record<string, unknown>)) {
      if (key === '' || typeof raw !== 'object' || raw === null) continue;
      const entry = raw as Record<string, unknown>;
      if (entry.link === true || typeof entry.version !== 'string' || entry.version === '') continue;
      // Optional platform binaries (esbuild, rolldown, …) for other systems are pinned but never installed.
      if (entry.optional === true && (!allows(entry.os, os) || !allows(entry.cpu, cpu))) continue;
      const i = key.lastIndexOf('node_modules/');
      const name = typeof entry.name === 'string' ? entry.name : i >= 0 ? key.slice(i + 'node_modules/'.length) : '';
      if (name === '') continue;
      out.push({ type: 'npm', name, version: entry.version, licenses: licensesOf(entry), foundBy: 'npm-lock' });
    }
    return out;
  }
  // v1 nests dependencies in dependencies: walked with an explicit stack, not recursion, so a hostile
  // lockfile nested a million deep (32 MiB allow it) cannot overflow the call stack.
  const entriesOf = (deps: unknown) => Object.entries(typeof deps === 'object' && deps !== null ? (deps as Record<string, unknown>) : {})[Symbol.iterator]();
  const stack = [entriesOf(doc.dependencies)];
  while (stack.length > 0) {
    const next = stack[stack.length - 1]!.next();
    if (next.done) {
      stack.pop();
      continue;
    }
    const [name, raw] = next.value;
    if (typeof raw !== 'object' || raw === null) continue;
    const entry = raw as Record<string, unknown>;
    if (name !== '' && typeof entry.version === 'string' && entry.version !== '' && !entry.version.startsWith('file:')) {
      out.push({ type: 'npm', name, version: entry.version, licenses: [], foundBy: 'npm-lock' });
    }
    stack.push(entriesOf(entry.dependencies));
  }
  return out;
}
