import { readFile } from 'node:fs/promises';
import { StevedoreError } from '../util/errors.js';
import { resolveInRoot } from './unpack/rootpath.js'; // not the unpack barrel: it loads tar-stream

/** The process identity a `USER` / `-u` value resolves to inside a rootfs. */
export interface ResolvedUser {
  uid: number;
  gid: number;
  additionalGids: number[];
  /** From /etc/passwd; `/` when the user has no entry (as runc and Podman). */
  home: string;
  name?: string;
}

export class UnknownUserError extends StevedoreError {
  constructor(message: string) {
    super('UNKNOWN_USER', message);
  }
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}
interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

const NUMERIC = /^\d+$/;
const MAX_ID = 2 ** 32 - 2;

/** Reads a file of the rootfs with symlinks resolved inside it; missing is empty. */
async function readRooted(rootfs: string, path: string): Promise<string> {
  try {
    return await readFile(await resolveInRoot(rootfs, path), 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') return '';
    throw err;
  }
}

export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '' || line.startsWith('#')) continue;
    const f = line.split(':');
    if (f.length < 4 || !NUMERIC.test(f[2]!) || !NUMERIC.test(f[3]!)) continue;
    out.push({ name: f[0]!, uid: Number(f[2]), gid: Number(f[3]), home: f[5] || '/' });
  }
  return out;
}

export function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '' || line.startsWith('#')) continue;
    const f = line.split(':');
    if (f.length < 3 || !NUMERIC.test(f[2]!)) continue;
    out.push({
      name: f[0]!,
      gid: Number(f[2]),
      members: (f[3] ?? '')
        .split(',')
        .map((m) => m.trim())
        .filter(Boolean),
    });
  }
  return out;
}

function checkId(what: string, n: number, spec: string): number {
  if (n > MAX_ID) throw new UnknownUserError(`${what} ${spec} is out of range`);
  return n;
}

/**
 * Resolves `name|uid[:group|gid]` as Docker and runc do: names must exist in the rootfs's
 * /etc/passwd or /etc/group; a number need not (a uid with no entry gets gid 0 and home `/`);
 * without a group the passwd entry's gid is used; supplementary groups are those of /etc/group
 * that list the user's name. An empty spec is root.
 */
export async function resolveUser(rootfs: string, spec: string | undefined): Promise<ResolvedUser> {
  const value = (spec ?? '').trim();
  const [userPart = '', groupPart] = value === '' ? ['0'] : value.split(':', 2);
  const passwd = parsePasswd(await readRooted(rootfs, '/etc/passwd'));
  const groups = parseGroup(await readRooted(rootfs, '/etc/group'));
  let entry: PasswdEntry | undefined;
  let uid: number;
  if (NUMERIC.test(userPart)) {
    uid = checkId('uid', Number(userPart), userPart);
    entry = passwd.find((p) => p.uid === uid);
  } else {
    if (userPart === '') throw new UnknownUserError(`invalid user "${value}"`);
    entry = passwd.find((p) => p.name === userPart);
    if (!entry) throw new UnknownUserError(`unable to find user ${userPart}: no matching entries in passwd file`);
    uid = entry.uid;
  }
  let gid = entry?.gid ?? 0;
  if (groupPart !== undefined && groupPart !== '') {
    if (NUMERIC.test(groupPart)) gid = checkId('gid', Number(groupPart), groupPart);
    else {
      const g = groups.find((x) => x.name === groupPart);
      if (!g) throw new UnknownUserError(`unable to find group ${groupPart}: no matching entries in group file`);
      gid = g.gid;
    }
  }
  const additionalGids: number[] = [];
  if (entry) {
    for (const g of groups) if (g.members.includes(entry.name) && g.gid !== gid && !additionalGids.includes(g.gid)) additionalGids.push(g.gid);
  }
  return { uid, gid, additionalGids, home: entry?.home ?? '/', ...(entry ? { name: entry.name } : {}) };
}

/** The /etc/passwd and /etc/group a container gets when its user is missing from the image's (only the files that change). */
export interface UserFiles {
  passwd?: string;
  group?: string;
}

function withLine(text: string, line: string): string {
  return text === '' || text.endsWith('\n') ? `${text}${line}\n` : `${text}\n${line}\n`;
}

/**
 * Podman's entries for a user the image does not name (`-u 1234`, `-u 1234:5678`), so that
 * `whoami`, `id` and anything calling getpwuid work: a passwd line
 * `UID:*:UID:GID:container user:HOME:/bin/sh` (HOME: the working directory) when no entry has the
 * uid, and a group line `GID:x:GID:USER` when an explicit group id has no entry (without a group,
 * podman adds `UID:x:UID:USER` for a user it added). Returns the whole new files; nothing for a
 * user the image knows.
 */
export async function userFiles(rootfs: string, spec: string | undefined, user: ResolvedUser, home: string): Promise<UserFiles> {
  const value = (spec ?? '').trim();
  if (value === '') return {};
  const [userPart = '', groupPart = ''] = value.split(':', 2);
  const passwdText = await readRooted(rootfs, '/etc/passwd');
  const groupText = await readRooted(rootfs, '/etc/group');
  const out: UserFiles = {};
  const addedUser = !parsePasswd(passwdText).some((p) => p.uid === user.uid);
  if (addedUser) out.passwd = withLine(passwdText, `${user.uid}:*:${user.uid}:${user.gid}:container user:${home}:/bin/sh`);
  const groups = parseGroup(groupText);
  let groupLine: string | undefined;
  if (groupPart !== '' && NUMERIC.test(groupPart)) {
    if (!groups.some((g) => g.gid === user.gid)) groupLine = `${user.gid}:x:${user.gid}:${userPart}`;
  } else if (groupPart === '' && addedUser && !groups.some((g) => g.gid === user.uid)) {
    groupLine = `${user.uid}:x:${user.uid}:${userPart}`;
  }
  if (groupLine) out.group = withLine(groupText, groupLine);
  return out;
}
