import { readFileSync } from 'node:fs';
import { InvalidInputError } from '../util/errors.js';

/** The spec's `process.capabilities`. */
export type CapabilitySets = Record<'bounding' | 'effective' | 'inheritable' | 'permitted' | 'ambient', string[]>;

/** `--cap-add` / `--cap-drop`: names with or without `CAP_`, any case, or `ALL`. */
export interface CapabilityChanges {
  add?: readonly string[];
  drop?: readonly string[];
}

/** Every capability of Linux 5.9 and later (capability.h), by number. */
export const ALL_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_DAC_READ_SEARCH',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_KILL',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETPCAP',
  'CAP_LINUX_IMMUTABLE',
  'CAP_NET_BIND_SERVICE',
  'CAP_NET_BROADCAST',
  'CAP_NET_ADMIN',
  'CAP_NET_RAW',
  'CAP_IPC_LOCK',
  'CAP_IPC_OWNER',
  'CAP_SYS_MODULE',
  'CAP_SYS_RAWIO',
  'CAP_SYS_CHROOT',
  'CAP_SYS_PTRACE',
  'CAP_SYS_PACCT',
  'CAP_SYS_ADMIN',
  'CAP_SYS_BOOT',
  'CAP_SYS_NICE',
  'CAP_SYS_RESOURCE',
  'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG',
  'CAP_MKNOD',
  'CAP_LEASE',
  'CAP_AUDIT_WRITE',
  'CAP_AUDIT_CONTROL',
  'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE',
  'CAP_MAC_ADMIN',
  'CAP_SYSLOG',
  'CAP_WAKE_ALARM',
  'CAP_BLOCK_SUSPEND',
  'CAP_AUDIT_READ',
  'CAP_PERFMON',
  'CAP_BPF',
  'CAP_CHECKPOINT_RESTORE',
];

/** A capability name in the spec's form (`CAP_NET_ADMIN`), or `ALL`; an unknown name is refused, as podman does. */
export function normaliseCapability(flag: string, name: string): string {
  const upper = name.trim().toUpperCase();
  if (upper === 'ALL') return 'ALL';
  const full = upper.startsWith('CAP_') ? upper : `CAP_${upper}`;
  if (!ALL_CAPABILITIES.includes(full)) throw new InvalidInputError(`${flag} ${name}: unknown capability "${full}"`);
  return full;
}

/** The capabilities in this process's bounding set (what a container may be given); every known one when unreadable. */
export function callerBoundingSet(statusText?: string): string[] {
  let text = statusText;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/status', 'utf8');
    } catch {
      return [...ALL_CAPABILITIES];
    }
  }
  const hex = /^CapBnd:\s*([0-9a-f]+)$/m.exec(text)?.[1];
  if (!hex) return [...ALL_CAPABILITIES];
  const mask = BigInt(`0x${hex}`);
  return ALL_CAPABILITIES.filter((_, i) => (mask >> BigInt(i)) & 1n);
}

/**
 * Podman's capability sets: the bounding set is the defaults with `drop` removed and `add` added
 * (`ALL` meaning every capability this process holds); root gets the whole bounding set as
 * effective and permitted; another user gets only the added ones, also inheritable and ambient so
 * they survive the exec (podman 4.3 does the same).
 */
export function capabilitySet(
  defaults: readonly string[],
  changes: CapabilityChanges | undefined,
  root: boolean,
  bounding: () => readonly string[] = callerBoundingSet,
): CapabilitySets {
  const add = (changes?.add ?? []).map((c) => normaliseCapability('--cap-add', c));
  const drop = (changes?.drop ?? []).map((c) => normaliseCapability('--cap-drop', c));
  const all = add.includes('ALL') ? bounding() : [];
  const added = [...all, ...add.filter((c) => c !== 'ALL')];
  // The defaults in their order, then the added ones (`--cap-drop ALL --cap-add X` keeps X).
  const set = drop.includes('ALL') ? [] : defaults.filter((c) => !drop.includes(c));
  for (const c of added) if (!set.includes(c)) set.push(c);
  const explicit = set.filter((c) => added.includes(c));
  if (root) return { bounding: set, effective: [...set], inheritable: [], permitted: [...set], ambient: [] };
  return { bounding: set, effective: [...explicit], inheritable: [...explicit], permitted: [...explicit], ambient: [...explicit] };
}
