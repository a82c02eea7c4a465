/**
 * Re-authorised image reuse (the kubelet's KEP-2535): an image in the node's store that was pulled
 * with credentials is not handed to another run just because that run names the same digest. Each
 * image digest records who fetched it: anonymously, or with which credentials (a hash of registry,
 * user name and secret, never the secret itself). A run may reuse the stored image only when it was
 * pulled anonymously or with the very credentials this run brings; otherwise the agent pulls again
 * with the run's own credentials (the registry then answers the manifest request, or refuses it),
 * and a success adds them to the record.
 *
 * Kept in `<store>/agent/pull-records.json`; images the record does not know (pulled by the CLI on
 * the same store, or before this record existed) count as unauthorised, so they are checked.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Credentials } from '../registry/credentials.js';
import { writeFileAtomic } from '../util/fs.js';

interface Entry {
  /** Fetched at least once with no credentials: anyone may reuse it. */
  anonymous?: boolean;
  /** Hashes of the credentials that fetched it or were shown to reach it. */
  credentials?: string[];
}

/** A stable hash of one set of credentials for one registry (the secret itself is never stored). */
export function credentialsIdentity(registry: string, c: Credentials | undefined): string | undefined {
  if (!c) return undefined;
  return createHash('sha256')
    .update(JSON.stringify([registry, c]))
    .digest('hex');
}

export class PullRecords {
  readonly #file: string;
  #entries: Record<string, Entry>;
  #lock: Promise<unknown> = Promise.resolve();

  private constructor(file: string, entries: Record<string, Entry>) {
    this.#file = file;
    this.#entries = entries;
  }

  static async open(storeRoot: string): Promise<PullRecords> {
    const file = join(storeRoot, 'agent', 'pull-records.json');
    let entries: Record<string, Entry> = {};
    try {
      const parsed = JSON.parse(await readFile(file, 'utf8')) as unknown;
      if (parsed && typeof parsed === 'object') entries = parsed as Record<string, Entry>;
    } catch {
      // Missing or unreadable: nothing is known, so every reuse is checked again (the safe side).
    }
    return new PullRecords(file, entries);
  }

  /** Whether a run bringing `identity` (undefined: none) may use the stored image without asking the registry. */
  mayReuse(digest: string, identity: string | undefined): boolean {
    const e = this.#entries[digest];
    if (!e) return false;
    if (e.anonymous) return true;
    return identity !== undefined && (e.credentials ?? []).includes(identity);
  }

  /** Records that `identity` (undefined: anonymous) fetched the image or reached its manifest. */
  record(digest: string, identity: string | undefined): Promise<void> {
    const next = this.#lock.then(async () => {
      const e = this.#entries[digest] ?? {};
      if (identity === undefined) {
        if (e.anonymous) return;
        e.anonymous = true;
      } else {
        if ((e.credentials ?? []).includes(identity)) return;
        e.credentials = [...(e.credentials ?? []), identity];
      }
      this.#entries[digest] = e;
      await writeFileAtomic(this.#file, JSON.stringify(this.#entries), 0o600);
    });
    this.#lock = next.catch(() => undefined);
    return next;
  }
}
