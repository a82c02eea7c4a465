import { parseStanzas, type FoundPackage } from './found.js';

/** dpkg states in which the package's files are on disk (dpkg-query(1)); `not-installed` and `config-files` are not. */
const PRESENT = new Set(['installed', 'half-installed', 'unpacked', 'half-configured', 'triggers-awaited', 'triggers-pending']);

/** `var/lib/dpkg/status`, or a distroless-style `var/lib/dpkg/status.d/<package>` (not its `.md5sums`). */
export function isDpkgDatabase(path: string): boolean {
  if (path === 'var/lib/dpkg/status') return true;
  const m = /^var\/lib\/dpkg\/status\.d\/([^/]+)$/.exec(path);
  return m !== null && !m[1]!.endsWith('.md5sums');
}

/**
 * Packages of a dpkg database file. Entries without a `Status:` field (status.d files) count as
 * installed; entries whose status says their files are gone do not.
 */
export function parseDpkgStatus(text: string): FoundPackage[] {
  const out: FoundPackage[] = [];
  for (const s of parseStanzas(text)) {
    const name = s.fields.get('Package');
    const version = s.fields.get('Version');
    if (!name || !version) continue;
    const status = s.fields.get('Status');
    if (status !== undefined) {
      const state = status.trim().split(/\s+/).pop() ?? '';
      if (!PRESENT.has(state)) continue;
    }
    let source: string | undefined;
    const src = s.fields.get('Source');
    if (src) {
      // "Source: util-linux (2.38.1-5)": the source package, and its version when it differs.
      const m = /^(\S+)(?:\s+\(([^)]+)\))?/.exec(src);
      if (m && m[1] !== name) source = m[2] ? `${m[1]}@${m[2]}` : m[1];
      else if (m && m[2]) source = `${m[1]}@${m[2]}`;
    }
    const arch = s.fields.get('Architecture');
    out.push({ type: 'deb', name, version, licenses: [], arch: arch || undefined, source, foundBy: 'dpkg-db' });
  }
  return out;
}

/** `usr/share/doc/<package>/copyright`: the package it documents. */
export function copyrightPackage(path: string): string | undefined {
  const m = /^usr\/share\/doc\/([^/]+)\/copyright$/.exec(path);
  return m ? m[1] : undefined;
}

/**
 * License short names of a machine-readable (DEP-5) copyright file, in order of appearance.
 * Files in the old free-text style have no `License:` fields and yield nothing: unknown, not guessed.
 */
export function parseDebianCopyright(text: string): string[] {
  const seen = new Set<string>();
  for (const line of text.split('\n')) {
    const m = /^License:[ \t]*(\S.*)$/.exec(line);
    if (!m) continue;
    for (const part of m[1]!.split(/\s+(?:or|and)\s+|,\s*/i)) {
      const name = part.trim().replace(/[()]/g, '');
      if (name !== '' && !/\s/.test(name)) seen.add(name);
    }
  }
  return [...seen];
}

/**
 * Debian lets packages of one source share a documentation directory: `/usr/share/doc/libffi-dev`
 * may be a symlink to `libffi8`, whose copyright file then covers both. The package a link names,
 * and the package directory it points at (relative, or absolute within /usr/share/doc).
 */
export function docLink(path: string, target: string): { pkg: string; target: string } | undefined {
  const m = /^usr\/share\/doc\/([^/]+)$/.exec(path);
  if (!m) return undefined;
  const t = /^(?:\/usr\/share\/doc\/|\.\.\/doc\/|\.\/)?([^/]+)\/?$/.exec(target);
  return t ? { pkg: m[1]!, target: t[1]! } : undefined;
}
