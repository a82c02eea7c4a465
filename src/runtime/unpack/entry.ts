import { UnsafeLayerEntryError } from './errors.js';
import type { EntryMeta } from './metadata.js';
import { splitRootedPath } from './rootpath.js';

export type EntryKind = 'file' | 'directory' | 'symlink' | 'hardlink' | 'character-device' | 'block-device' | 'fifo';

/** A tar header, checked and reduced to what the unpacker acts on. */
export interface LayerEntry {
  /** The name as it appears in the tar (after PAX/GNU long names), for messages. */
  name: string;
  /** Lexically cleaned path below the root; empty for the root itself (`./`). */
  components: string[];
  kind: EntryKind;
  /** Symlink target verbatim, or the hardlink target's cleaned components. */
  linkname?: string;
  linkComponents?: string[];
  meta: EntryMeta;
  /** Extended attribute names carried in PAX records (`SCHILY.xattr.*`). */
  xattrs: string[];
}

/** The fields of a tar-stream header the unpacker reads; `type` is null for typeflags it does not know. */
export interface RawHeader {
  name: string;
  type?: string | null;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: Date;
  linkname?: string | null;
  pax?: unknown;
  /** Data bytes the header announces (after a PAX `size` record). */
  size?: number;
}

const KINDS: Record<string, EntryKind | undefined> = {
  file: 'file',
  'contiguous-file': 'file',
  directory: 'directory',
  symlink: 'symlink',
  link: 'hardlink',
  'character-device': 'character-device',
  'block-device': 'block-device',
  fifo: 'fifo',
};

const MAX_ID = 0xffff_fffe; // (uid_t)-1 means "leave unchanged" to chown; never a real owner

function paxId(name: string, pax: Record<string, string> | null | undefined, key: 'uid' | 'gid', fallback: number | undefined): number {
  const raw = pax?.[key];
  const value = raw === undefined ? (fallback ?? 0) : Number(raw);
  if (!Number.isInteger(value) || value < 0 || value > MAX_ID) {
    throw new UnsafeLayerEntryError(name, `invalid ${key} ${JSON.stringify(raw ?? String(fallback))}`);
  }
  return value;
}

function paxMtime(pax: Record<string, string> | null | undefined, fallback: Date | undefined): Date {
  // PAX carries sub-second times ("1700000000.123456789"); the ustar field only whole seconds.
  const raw = pax?.mtime;
  if (raw !== undefined) {
    const seconds = Number(raw);
    if (Number.isFinite(seconds)) return new Date(Math.round(seconds * 1000));
  }
  return fallback && !Number.isNaN(fallback.getTime()) ? fallback : new Date(0);
}

/** Validates a header; anything the unpacker cannot apply faithfully and safely is refused here. */
export function parseEntry(header: RawHeader): LayerEntry {
  const name = header.name;
  const kind = header.type ? KINDS[header.type] : undefined;
  if (kind === undefined) throw new UnsafeLayerEntryError(name, `unsupported tar entry type ${JSON.stringify(header.type ?? 'unknown')}`);
  const components = splitRootedPath(name);
  if (components === null) throw new UnsafeLayerEntryError(name, 'path escapes the root');
  if (components.length === 0 && kind !== 'directory') {
    throw new UnsafeLayerEntryError(name, `a ${kind} cannot replace the root directory`);
  }

  const pax = (header.pax ?? null) as Record<string, string> | null;
  const meta: EntryMeta = {
    mode: (header.mode ?? (kind === 'directory' ? 0o755 : 0o644)) & 0o7777,
    uid: paxId(name, pax, 'uid', header.uid),
    gid: paxId(name, pax, 'gid', header.gid),
    mtime: paxMtime(pax, header.mtime),
  };
  const xattrs = Object.keys(pax ?? {})
    .filter((k) => k.startsWith('SCHILY.xattr.'))
    .map((k) => k.slice('SCHILY.xattr.'.length));
  const entry: LayerEntry = { name, components, kind, meta, xattrs };

  if (kind === 'symlink') {
    // The target is stored verbatim: it is only ever followed through resolveInRoot, which keeps
    // even `/` and `../../..` inside the root, so an "escaping" symlink is harmless on disk.
    if (!header.linkname) throw new UnsafeLayerEntryError(name, 'symlink with an empty target');
    entry.linkname = header.linkname;
  }
  if (kind === 'hardlink') {
    if (!header.linkname) throw new UnsafeLayerEntryError(name, 'hardlink with an empty target');
    const linkComponents = splitRootedPath(header.linkname);
    if (linkComponents === null) throw new UnsafeLayerEntryError(name, `hardlink target ${JSON.stringify(header.linkname)} escapes the root`);
    if (linkComponents.length === 0) throw new UnsafeLayerEntryError(name, 'hardlink to the root directory');
    entry.linkname = header.linkname;
    entry.linkComponents = linkComponents;
  }
  return entry;
}
