/**
 * `RUN --mount=...` as BuildKit defines it: a CSV list of `key=value` fields (so a value may be
 * double-quoted to hold a comma). Values are kept as written; they may hold `$VARS`, which the stage
 * evaluator expands before calling `validateMount` again, so checks that need the final text (octal
 * mode, sharing mode) run as soon as the text is known.
 */
export type MountType = 'bind' | 'cache' | 'tmpfs' | 'secret' | 'ssh';
export type CacheSharing = 'shared' | 'private' | 'locked';

interface MountCommon {
  /** Where it appears in the container. Always set for bind, cache and tmpfs. */
  target?: string;
}

/** A read-only (unless `rw`) view of the context, a stage or an image. */
export interface BindMount extends MountCommon {
  type: 'bind';
  target: string;
  /** Path inside `from` (or the context); the root by default. */
  source?: string;
  /** A stage name or index, or an image reference; the build context when absent. */
  from?: string;
  readonly: boolean;
}

/** A persistent cache directory shared between builds, keyed by `id` (the target by default). */
export interface CacheMount extends MountCommon {
  type: 'cache';
  target: string;
  id: string;
  sharing: string;
  from?: string;
  source?: string;
  readonly: boolean;
  /** Octal text, e.g. "0755" (BuildKit's default). */
  mode?: string;
  uid?: string;
  gid?: string;
}

export interface TmpfsMount extends MountCommon {
  type: 'tmpfs';
  target: string;
  /** Size in bytes, or with a unit (`64m`). */
  size?: string;
}

/** A secret file (`/run/secrets/<id>` by default) or environment variable (`env=`). */
export interface SecretMount extends MountCommon {
  type: 'secret';
  id: string;
  env?: string;
  required: boolean;
  mode?: string;
  uid?: string;
  gid?: string;
}

/** The SSH agent socket (`id` "default" unless given). */
export interface SshMount extends MountCommon {
  type: 'ssh';
  id: string;
  required: boolean;
  mode?: string;
  uid?: string;
  gid?: string;
}

export type Mount = BindMount | CacheMount | TmpfsMount | SecretMount | SshMount;

export class MountError extends Error {}

const TYPES: readonly MountType[] = ['bind', 'cache', 'tmpfs', 'secret', 'ssh'];
const BOOL_KEYS = new Set(['readonly', 'ro', 'readwrite', 'rw', 'required', 'z']);
/**
 * SELinux relabelling (`z` shared, `Z` private), which buildah and podman Containerfiles carry on
 * bind and cache mounts: accepted and has no effect. Stevedore sets no SELinux labels (its build
 * Pods and RUN containers run without an SELinux context of their own), as podman on a host
 * without SELinux ignores the option.
 */
const RELABEL = 'z';
/** Keys each type accepts (besides `type`). */
const ALLOWED: Record<MountType, ReadonlySet<string>> = {
  bind: new Set(['target', 'source', 'from', 'readonly', 'readwrite', RELABEL]),
  cache: new Set(['target', 'source', 'from', 'readonly', 'readwrite', 'id', 'sharing', 'mode', 'uid', 'gid', RELABEL]),
  tmpfs: new Set(['target', 'size']),
  secret: new Set(['target', 'id', 'env', 'required', 'mode', 'uid', 'gid']),
  ssh: new Set(['target', 'id', 'required', 'mode', 'uid', 'gid']),
};
const ALIASES: Record<string, string> = {
  dst: 'target',
  destination: 'target',
  src: 'source',
  ro: 'readonly',
  rw: 'readwrite',
};

/** Parses one `--mount` value. `expand` is applied to every value (identity at parse time). */
export function parseMount(text: string, expand: (s: string) => string = (s) => s): Mount {
  const fields = splitCsv(text);
  let type: MountType = 'bind';
  const values = new Map<string, string | undefined>();
  let relabel: string | undefined;
  for (const field of fields) {
    const eq = field.indexOf('=');
    const rawKey = (eq < 0 ? field : field.slice(0, eq)).trim().toLowerCase();
    const key = ALIASES[rawKey] ?? rawKey;
    const value = eq < 0 ? undefined : expand(field.slice(eq + 1));
    if (key === 'type') {
      if (value === undefined || !(TYPES as readonly string[]).includes(value)) {
        throw new MountError(`unsupported mount type "${value ?? ''}"`);
      }
      type = value as MountType;
      continue;
    }
    if (value === undefined && !BOOL_KEYS.has(rawKey)) {
      throw new MountError(`invalid field "${field}" must be a key=value pair`);
    }
    if (key === RELABEL) {
      if (value !== undefined) throw new MountError(`invalid field "${field}": ${field.slice(0, 1)} takes no value`);
      relabel = field.slice(0, 1);
      continue;
    }
    if (values.has(key)) throw new MountError(`duplicate mount option "${rawKey}"`);
    values.set(key, value);
  }
  if (relabel !== undefined && !ALLOWED[type].has(RELABEL)) throw new MountError(`unexpected key "${relabel}" for mount type ${type}`);
  for (const key of values.keys()) {
    if (!ALLOWED[type].has(key)) throw new MountError(`unexpected key "${key}" for mount type ${type}`);
  }
  const str = (k: string): string | undefined => values.get(k) ?? undefined;
  const bool = (k: string, dflt: boolean): boolean => {
    if (!values.has(k)) return dflt;
    const v = values.get(k);
    if (v === undefined || /^true$/i.test(v)) return true;
    if (/^false$/i.test(v)) return false;
    throw new MountError(`invalid value for ${k}: "${v}" (want true or false)`);
  };
  // `readwrite` is the inverse spelling of `readonly`.
  const readonly = (dflt: boolean): boolean => (values.has('readwrite') ? !bool('readwrite', false) : bool('readonly', dflt));
  const target = str('target');
  const needTarget = (): string => {
    if (!target) throw new MountError(`mount type ${type} requires a target`);
    return target;
  };
  const owner = (m: { mode?: string; uid?: string; gid?: string }): void => {
    for (const k of ['mode', 'uid', 'gid'] as const) {
      const v = str(k);
      if (v !== undefined) m[k] = v;
    }
  };

  let mount: Mount;
  switch (type) {
    case 'bind': {
      mount = { type, target: needTarget(), readonly: readonly(true) };
      if (str('source') !== undefined) mount.source = str('source')!;
      if (str('from') !== undefined) mount.from = str('from')!;
      break;
    }
    case 'cache': {
      const t = needTarget();
      mount = { type, target: t, id: str('id') || t, sharing: str('sharing') ?? 'shared', readonly: readonly(false) };
      if (str('source') !== undefined) mount.source = str('source')!;
      if (str('from') !== undefined) mount.from = str('from')!;
      owner(mount);
      break;
    }
    case 'tmpfs':
      mount = { type, target: needTarget() };
      if (str('size') !== undefined) mount.size = str('size')!;
      break;
    case 'secret': {
      const env = str('env');
      let id = str('id');
      if (!id) {
        if (!target) throw new MountError('secret mount requires an id or a target');
        id = target.replace(/\/+$/, '').split('/').pop() ?? '';
      }
      mount = { type, id, required: bool('required', false) };
      // With only env=, the secret is not also written to a file; otherwise /run/secrets/<id>.
      if (target) mount.target = target;
      else if (env === undefined) mount.target = `/run/secrets/${id}`;
      if (env !== undefined) mount.env = env;
      owner(mount);
      break;
    }
    case 'ssh':
      mount = { type, id: str('id') || 'default', required: bool('required', false) };
      if (target) mount.target = target;
      owner(mount);
      break;
  }
  validateMount(mount);
  return mount;
}

/** Value checks; values still holding `$` are skipped until they are expanded. */
export function validateMount(m: Mount): void {
  const literal = (v: string | undefined): v is string => v !== undefined && !v.includes('$');
  if (m.type === 'cache' && literal(m.sharing) && !['shared', 'private', 'locked'].includes(m.sharing)) {
    throw new MountError(`unsupported sharing value "${m.sharing}" (want shared, private or locked)`);
  }
  if ('mode' in m && literal(m.mode) && !/^[0-7]{1,4}$/.test(m.mode)) {
    throw new MountError(`mount mode must be octal, got "${m.mode}"`);
  }
  for (const k of ['uid', 'gid'] as const) {
    const v = k in m ? (m as { uid?: string; gid?: string })[k] : undefined;
    if (literal(v) && !/^\d+$/.test(v)) throw new MountError(`mount ${k} must be a number, got "${v}"`);
  }
  if (m.type === 'tmpfs' && literal(m.size) && !/^\d+(\.\d+)?([kmgtp]i?b?)?$/i.test(m.size)) {
    throw new MountError(`invalid tmpfs size "${m.size}"`);
  }
  if (m.target !== undefined && literal(m.target) && m.target === '') throw new MountError('mount target must not be empty');
}

/** One CSV record (RFC 4180 as Go's encoding/csv reads it): `"a,b"` is one field, `""` a quote. */
export function splitCsv(text: string): string[] {
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    let field = '';
    if (text[i] === '"') {
      i++;
      for (;;) {
        if (i >= text.length) throw new MountError(`unterminated quote in "${text}"`);
        if (text[i] === '"') {
          if (text[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        field += text[i++];
      }
      if (i < text.length && text[i] !== ',') throw new MountError(`extraneous text after quoted field in "${text}"`);
    } else {
      while (i < text.length && text[i] !== ',') {
        if (text[i] === '"') throw new MountError(`bare " in non-quoted field in "${text}"`);
        field += text[i++];
      }
    }
    fields.push(field);
    if (i >= text.length) break;
    i++; // the comma
  }
  return fields.filter((f) => f !== '');
}
