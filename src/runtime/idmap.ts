import { readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
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
  const info = userInfo();
  const user = opts.user ?? info.username;
  const uid = opts.uid ?? info.uid;
  const gid = opts.gid ?? info.gid;
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
