import { readFileSync } from 'node:fs';
import { StevedoreError } from '../util/errors.js';
import type { IdMapping } from './unpack/index.js';

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
