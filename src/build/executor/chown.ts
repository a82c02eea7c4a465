import { resolveUser } from '../../runtime/users.js';

/**
 * `--chown=user[:group]` as Docker resolves it: names through the stage's /etc/passwd and
 * /etc/group, numbers as they are, and without a group the gid is the uid's number (not the user's
 * primary group: "a UID without GID will use the same numeric UID as the GID").
 */
export async function resolveChown(spec: string, rootfs: () => Promise<string>): Promise<{ uid: number; gid: number }> {
  const [user = '', group] = spec.split(':', 2) as [string, string | undefined];
  const numeric = (s: string): boolean => /^\d+$/.test(s);
  let uid: number;
  if (numeric(user)) uid = Number(user);
  else uid = (await resolveUser(await rootfs(), user)).uid;
  let gid = uid;
  if (group !== undefined && group !== '') {
    gid = numeric(group) ? Number(group) : (await resolveUser(await rootfs(), `0:${group}`)).gid;
  }
  return { uid, gid };
}

/** `--chmod=755` → 0o755. */
export function parseChmod(text: string | undefined): number | undefined {
  return text === undefined ? undefined : parseInt(text, 8);
}
