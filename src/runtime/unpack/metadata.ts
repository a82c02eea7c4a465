import { constants } from 'node:fs';
import { lchown, lutimes, open, type FileHandle } from 'node:fs/promises';
import type { IdMap, IdMapping } from './types.js';
import { UnsafeLayerEntryError } from './errors.js';

/** Ownership, permission bits and modification time of one entry, as the layer states them. */
export interface EntryMeta {
  /** Permission bits including setuid, setgid and sticky (07777). */
  mode: number;
  uid: number;
  gid: number;
  mtime: Date;
}

/** How ownership is written: not at all (rootless), as-is, or through a user-namespace map. */
export interface OwnershipPolicy {
  chown: boolean;
  idMap?: IdMap;
}

function mapOne(maps: readonly IdMapping[], id: number): number | undefined {
  for (const m of maps) {
    if (id >= m.containerID && id < m.containerID + m.size) return m.hostID + (id - m.containerID);
  }
  return undefined;
}

/** The host uid/gid for an entry; an id the map does not cover aborts, as containerd does. */
export function hostIds(entryPath: string, meta: EntryMeta, policy: OwnershipPolicy): { uid: number; gid: number } {
  if (!policy.idMap) return { uid: meta.uid, gid: meta.gid };
  const uid = mapOne(policy.idMap.uidMappings, meta.uid);
  const gid = mapOne(policy.idMap.gidMappings, meta.gid);
  if (uid === undefined) throw new UnsafeLayerEntryError(entryPath, `uid ${meta.uid} is outside the user-namespace id map`);
  if (gid === undefined) throw new UnsafeLayerEntryError(entryPath, `gid ${meta.gid} is outside the user-namespace id map`);
  return { uid, gid };
}

/**
 * Applies owner, mode and times through an open descriptor, so a concurrent rename cannot redirect
 * them. chown comes first: the kernel clears setuid/setgid on chown, so chmod must come after it.
 */
export async function applyToHandle(fh: FileHandle, entryPath: string, meta: EntryMeta, policy: OwnershipPolicy): Promise<void> {
  if (policy.chown) {
    const { uid, gid } = hostIds(entryPath, meta, policy);
    await fh.chown(uid, gid);
  }
  await fh.chmod(meta.mode & 0o7777);
  await fh.utimes(meta.mtime, meta.mtime);
}

/** Symlinks have no mode of their own on Linux; owner and times are set on the link, never its target. */
export async function applyToSymlink(path: string, entryPath: string, meta: EntryMeta, policy: OwnershipPolicy): Promise<void> {
  if (policy.chown) {
    const { uid, gid } = hostIds(entryPath, meta, policy);
    await lchown(path, uid, gid);
  }
  await lutimes(path, meta.mtime, meta.mtime);
}

/** Opens a directory without following a symlink in its last component. */
export async function openDirectoryNoFollow(path: string): Promise<FileHandle> {
  return open(path, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
}
