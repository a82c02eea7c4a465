import { readFileSync } from 'node:fs';
import { StevedoreError } from '../util/errors.js';
import type { IdMapping } from './unpack/types.js';

/** `/etc/subuid` / `/etc/subgid` ranges of a user (matched by name or by number). */
export function subordinateRanges(text: string, user: string, id: number): { start: number; count: number }[] {
  const out: { start: number; count: number }[] = [];
  for (const line of text.split('\n')) {
    const [who, start, count] = line.trim().split(':');
    if (!who || start === undefined || count === undefined) continue;
    if (who !== user && who !== String(id)) continue;
    if (/^\d+$/.test(start) && /^\d+$/.test(count)) out.push({ start: Number(start), count: Number(count) });
  }
  return out;
}

/**
 * Rootless mappings as Podman makes them: container 0 is the caller, container 1.. the
 * caller's subordinate ids (all ranges, in file order).
 */
export function rootlessMappings(opts: { user?: string; uid?: number; gid?: number; subuid?: string; subgid?: string } = {}): {
  uidMappings: IdMapping[];
  gidMappings: IdMapping[];
} {
  const uid = opts.uid ?? process.getuid?.() ?? 0;
  const gid = opts.gid ?? process.getgid?.() ?? 0;
  const user = opts.user ?? userName(uid);
  const build = (self: number, text: string, file: string): IdMapping[] => {
    const ranges = subordinateRanges(text, user, self);
    if (ranges.length === 0) throw new StevedoreError('NO_SUBIDS', `no ranges for ${user} in ${file}: rootless containers need subordinate ids`);
    const maps: IdMapping[] = [{ containerID: 0, hostID: self, size: 1 }];
    let next = 1;
    for (const r of ranges) {
      maps.push({ containerID: next, hostID: r.start, size: r.count });
      next += r.count;
    }
    return maps;
  };
  return {
    uidMappings: build(uid, opts.subuid ?? readFileSync('/etc/subuid', 'utf8'), '/etc/subuid'),
    gidMappings: build(gid, opts.subgid ?? readFileSync('/etc/subgid', 'utf8'), '/etc/subgid'),
  };
}

/**
 * The login name of a uid from /etc/passwd, or the number itself. Not os.userInfo(): it throws when
 * the uid has no passwd entry, which is the normal case for a Pod's `runAsUser`.
 */
export function userName(uid: number, passwd?: string): string {
  let text = passwd;
  if (text === undefined) {
    try {
      text = readFileSync('/etc/passwd', 'utf8');
    } catch {
      return String(uid);
    }
  }
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length >= 3 && f[2] === String(uid) && f[0]) return f[0];
  }
  return String(uid);
}

/** Whether the caller has subordinate ids in /etc/subuid and /etc/subgid. */
export function hasSubordinateIds(): boolean {
  try {
    rootlessMappings();
    return true;
  } catch {
    return false;
  }
}

/** A range of ids as this process's user namespace numbers them. */
export interface IdRange {
  start: number;
  count: number;
}

/** Parses /proc/<pid>/uid_map or gid_map text: `inside outside count` per line. */
export function parseIdMapFile(text: string): IdMapping[] {
  const out: IdMapping[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length !== 3 || !f.every((x) => /^\d+$/.test(x))) continue;
    out.push({ containerID: Number(f[0]), hostID: Number(f[1]), size: Number(f[2]) });
  }
  return out;
}

/** Whether a map is the initial user namespace's identity map (`0 0 4294967295`). */
export function isInitialIdMap(maps: readonly IdMapping[]): boolean {
  return maps.length === 1 && maps[0]!.containerID === 0 && maps[0]!.hostID === 0 && maps[0]!.size === 4294967295;
}

/**
 * The ids this process may hand to child user namespaces when it is root of a user namespace of
 * its own (a rootless agent re-executed over its subordinate ids): every id mapped in both its
 * uid_map and gid_map except 0, which is the caller itself. Undefined in the initial user
 * namespace, where every id is mapped and a range must be configured instead.
 */
export function delegatedIdRanges(uidMap: string, gidMap: string): IdRange[] | undefined {
  const uids = parseIdMapFile(uidMap);
  const gids = parseIdMapFile(gidMap);
  if (isInitialIdMap(uids)) return undefined;
  const inside = (ms: IdMapping[]): IdRange[] =>
    ms
      .map((m) => (m.containerID === 0 ? { start: 1, count: m.size - 1 } : { start: m.containerID, count: m.size }))
      .filter((r) => r.count > 0)
      .sort((a, b) => a.start - b.start);
  const out: IdRange[] = [];
  for (const u of inside(uids)) {
    for (const g of inside(gids)) {
      const start = Math.max(u.start, g.start);
      const end = Math.min(u.start + u.count, g.start + g.count);
      if (end > start) out.push({ start, count: end - start });
    }
  }
  return out;
}

/** `START:COUNT` (a configured id range, e.g. `--userns-range 65536:67108864`). */
export function parseIdRange(text: string, what: string): IdRange {
  const m = /^(\d+):(\d+)$/.exec(text.trim());
  if (!m) throw new StevedoreError('INVALID_ID_RANGE', `${what}: "${text}" is not START:COUNT`);
  const start = Number(m[1]);
  const count = Number(m[2]);
  if (start < 1 || count < 1 || start + count > 4294967295)
    throw new StevedoreError('INVALID_ID_RANGE', `${what}: ${text} must lie within 1..4294967294 (0 is the host's root)`);
  return { start, count };
}
