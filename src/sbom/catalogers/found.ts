import type { Digest } from '../../oci/digest.js';
import type { Distro, PackageType } from '../types.js';

/** A package as a cataloger reads it, before the image walk adds its layer and purl. */
export interface FoundPackage {
  type: PackageType;
  name: string;
  version: string;
  licenses: string[];
  arch?: string;
  source?: string;
  foundBy: string;
  /** Set by the walk: the lowest layer the package survived from unchanged. */
  layer?: Digest;
}

/** What one file of the image contributes to the catalog. */
export type Finding =
  | { kind: 'packages'; packages: FoundPackage[] }
  /** `/usr/share/doc/<package>/copyright`: the licenses of a Debian package (DEP-5). */
  | { kind: 'copyright'; pkg: string; licenses: string[] }
  | { kind: 'os-release'; distro: Distro }
  /** `/usr/share/doc/<package>` as a symlink to another package's directory (same source package). */
  | { kind: 'doc-link'; pkg: string; target: string };

/**
 * Splits an RFC 822-style control file (dpkg status, apk installed db, Python METADATA headers)
 * into stanzas of fields. Continuation lines (leading space or tab) are joined to the field above
 * with a newline; the first occurrence of a repeated field wins, and `all` keeps every value.
 */
export interface Stanza {
  fields: Map<string, string>;
  all: Map<string, string[]>;
}

export function parseStanzas(text: string, opts: { separator?: RegExp; stopAtBlank?: boolean } = {}): Stanza[] {
  const out: Stanza[] = [];
  let cur: Stanza | undefined;
  let last: string | undefined;
  const sep = opts.separator ?? /^([A-Za-z0-9][A-Za-z0-9_.-]*):\s?(.*)$/;
  for (const raw of text.split('\n')) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.trim() === '') {
      if (opts.stopAtBlank && cur) break;
      cur = undefined;
      last = undefined;
      continue;
    }
    if ((line.startsWith(' ') || line.startsWith('\t')) && cur && last) {
      const prev = cur.fields.get(last) ?? '';
      const cont = line.trim() === '.' ? '' : line.trim();
      if (cur.fields.has(last) && cur.all.get(last)!.length === 1) cur.fields.set(last, prev === '' ? cont : `${prev}\n${cont}`);
      continue;
    }
    const m = sep.exec(line);
    if (!m) continue;
    if (!cur) {
      cur = { fields: new Map(), all: new Map() };
      out.push(cur);
    }
    const key = m[1]!;
    const value = m[2]!.trim();
    last = key;
    if (!cur.fields.has(key)) cur.fields.set(key, value);
    const list = cur.all.get(key) ?? [];
    list.push(value);
    cur.all.set(key, list);
  }
  return out;
}
