/**
 * Which repositories of one registry are known to hold a blob: containers/image's blob-info cache,
 * kept in memory by each RegistryClient. A destination that lacks a blob can then ask the registry
 * to mount it from a repository of its own that has it (a sync of two repositories that share base
 * layers uploads them once), whatever the source. Kept per client, so only repositories seen with
 * the same credentials are ever named in a mount: another tenant's repository is never probed.
 */
import type { Digest } from '../oci/digest.js';

/** Digests remembered; the oldest are forgotten first. */
const MAX_DIGESTS = 10_000;
/** Repositories remembered per digest (the most recent). */
const MAX_REPOS = 4;

export class BlobLocations {
  readonly #repos = new Map<Digest, string[]>();

  /** Records that `repo` holds `digest`. */
  add(digest: Digest, repo: string): void {
    const have = this.#repos.get(digest);
    if (have) {
      if (have[0] === repo) return;
      const i = have.indexOf(repo);
      if (i >= 0) have.splice(i, 1);
      have.unshift(repo);
      if (have.length > MAX_REPOS) have.pop();
      return;
    }
    if (this.#repos.size >= MAX_DIGESTS) this.#repos.delete(this.#repos.keys().next().value!);
    this.#repos.set(digest, [repo]);
  }

  /** Forgets that `repo` holds `digest` (a mount from it failed). */
  remove(digest: Digest, repo: string): void {
    const have = this.#repos.get(digest);
    if (!have) return;
    const i = have.indexOf(repo);
    if (i >= 0) have.splice(i, 1);
    if (have.length === 0) this.#repos.delete(digest);
  }

  /** Repositories other than `except` known to hold `digest`, most recent first. */
  candidates(digest: Digest, except: string): string[] {
    return (this.#repos.get(digest) ?? []).filter((r) => r !== except);
  }
}
