import { existsSync, readFileSync } from 'node:fs';
import { isInitialIdMap, parseIdMapFile } from './idmap.js';

export type CgroupMode = 'v1' | 'v2' | 'hybrid';

/** The host's cgroup layout, from /proc/self/mountinfo. */
export function cgroupMode(mountinfo?: string): CgroupMode {
  let text = mountinfo;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/mountinfo', 'utf8');
    } catch {
      return 'v1';
    }
  }
  let v2Root = false;
  let v2Elsewhere = false;
  let v1 = false;
  for (const line of text.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const mountPoint = line.slice(0, sep).split(' ')[4];
    const fstype = line.slice(sep + 3).split(' ')[0];
    if (fstype === 'cgroup2') {
      if (mountPoint === '/sys/fs/cgroup') v2Root = true;
      else v2Elsewhere = true;
    } else if (fstype === 'cgroup') v1 = true;
  }
  if (v2Root) return 'v2';
  return v1 && v2Elsewhere ? 'hybrid' : 'v1';
}

/**
 * Whether this process is in a user namespace that maps a single id (`unshare --map-root-user`
 * without subordinate ids, e.g. a non-root build Pod): files can only be owned by that one id.
 */
export function singleIdNamespace(uidMap?: string): boolean {
  const text = uidMap ?? ownUidMap();
  if (text === undefined) return false;
  const maps = parseIdMapFile(text);
  return maps.length === 1 && maps[0]!.size === 1;
}

/** /proc/self/uid_map, or undefined where /proc has none (not Linux). */
function ownUidMap(): string | undefined {
  try {
    return readFileSync('/proc/self/uid_map', 'utf8');
  } catch {
    return undefined;
  }
}

/** Whether this process runs in a user namespace other than the host's (rootless, `unshare`). */
export function inUserNamespace(uidMap?: string): boolean {
  const text = uidMap ?? ownUidMap();
  if (text === undefined) return false;
  return !isInitialIdMap(parseIdMapFile(text));
}

export type ResourceController = 'memory' | 'cpu' | 'pids';

/**
 * Which controllers this process may use for a container. Root on cgroup v1 or hybrid may use any
 * mounted hierarchy; on v2 the controller must be enabled in the root's subtree; a non-root caller
 * (or root inside a user namespace) needs the controller delegated to a cgroup it owns, which we do
 * not set up (systemd does that for Podman): it gets none, and the caller warns.
 */
export function availableControllers(mode: CgroupMode = cgroupMode()): Set<ResourceController> {
  const all: ResourceController[] = ['memory', 'cpu', 'pids'];
  if (process.geteuid?.() !== 0 || inUserNamespace()) return new Set();
  if (mode === 'v2') {
    try {
      const enabled = readFileSync('/sys/fs/cgroup/cgroup.subtree_control', 'utf8').split(/\s+/);
      return new Set(all.filter((c) => enabled.includes(c)));
    } catch {
      return new Set();
    }
  }
  return new Set(all.filter((c) => existsSync(`/sys/fs/cgroup/${c}`)));
}
