import type { Distro } from '../types.js';

export function isOsRelease(path: string): boolean {
  return path === 'etc/os-release' || path === 'usr/lib/os-release';
}

/** os-release(5): shell-style `KEY=value` lines, values optionally quoted. */
export function parseOsRelease(text: string): Distro | undefined {
  const kv = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (!m) continue;
    let v = m[2]!.trim();
    if ((v.startsWith('"') && v.endsWith('"')) || (v.startsWith("'") && v.endsWith("'"))) v = v.slice(1, -1);
    kv.set(m[1]!, v.replace(/\\(["'$`\\])/g, '$1'));
  }
  const id = kv.get('ID');
  if (!id) return undefined;
  return { id, versionId: kv.get('VERSION_ID') || undefined, prettyName: kv.get('PRETTY_NAME') || undefined };
}
