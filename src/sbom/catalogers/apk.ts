import { parseStanzas, type FoundPackage } from './found.js';

export function isApkDatabase(path: string): boolean {
  return path === 'lib/apk/db/installed';
}

/** Alpine's installed database: one stanza per package, single-letter keys (`P:` name, `V:` version, `A:` arch, `L:` license, `o:` origin). */
export function parseApkInstalled(text: string): FoundPackage[] {
  const out: FoundPackage[] = [];
  for (const s of parseStanzas(text, { separator: /^([A-Za-z]):(.*)$/ })) {
    const name = s.fields.get('P');
    const version = s.fields.get('V');
    if (!name || !version) continue;
    const license = s.fields.get('L');
    const origin = s.fields.get('o');
    out.push({
      type: 'apk',
      name,
      version,
      licenses: license ? [license] : [],
      arch: s.fields.get('A') || undefined,
      source: origin && origin !== name ? origin : undefined,
      foundBy: 'apk-db',
    });
  }
  return out;
}
