import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Digest } from '../../oci/digest.js';
import type { ImageStore } from '../../runtime/store/index.js';
import { InvalidInputError, NotFoundError, StevedoreError } from '../../util/errors.js';
import { withFileLock, writeFileAtomic } from '../../util/fs.js';
import type { StageState } from '../executor/state.js';

/**
 * A working container (buildah's `from`): the image it started from and its state now. Its
 * filesystem is the base's layers plus one layer per `run`/`copy`/`add` since; `commit` turns
 * everything since the base into one layer. Kept as JSON under `<store>/working-containers/`.
 */
export interface WorkingContainer {
  /** 64 hex digits, as buildah's container IDs. */
  id: string;
  name: string;
  /** The base image's store name (`docker.io/library/busybox:latest`), or `scratch`. */
  image: string;
  /** The base image's ID (its config digest's hex), empty for scratch. */
  imageId: string;
  /** The base image's manifest digest (the `org.opencontainers.image.base.digest` annotation). */
  imageDigest?: string;
  created: string;
  /** The state right after `from`: what `commit` diffs against. */
  base: StageState;
  /** Layers so far (base + one per run/copy) and the config as `config` left it. */
  state: StageState;
  /** `config --annotation`: manifest annotations at commit. */
  annotations: Record<string, string>;
  /** `config --created-by`: the history entry's created_by at commit (buildah's default `/bin/sh`). */
  createdBy?: string;
}

export class WorkingContainerExistsError extends StevedoreError {
  constructor(name: string) {
    super('ALREADY_EXISTS', `a working container named "${name}" already exists (buildah rm it, or choose another --name)`);
  }
}

/** Names as buildah allows them: what a container name may be. */
const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** The working containers of one store: read, written and removed under a lock file. */
export class WorkingContainers {
  readonly dir: string;
  constructor(store: ImageStore) {
    this.dir = join(store.root, 'working-containers');
  }

  #file(id: string): string {
    return join(this.dir, `${id}.json`);
  }

  /**
   * Runs `fn` holding the store-wide lock for working containers (names are unique across them).
   * A `run` may hold it for long: the lock is not taken as stale before `staleMs`.
   */
  async locked<T>(fn: () => Promise<T>, opts: { staleMs?: number } = {}): Promise<T> {
    await mkdir(this.dir, { recursive: true });
    return withFileLock(join(this.dir, '.lock'), fn, { timeoutMs: 10 * 60_000, staleMs: opts.staleMs ?? 6 * 3600_000 });
  }

  async list(): Promise<WorkingContainer[]> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    const out: WorkingContainer[] = [];
    for (const n of names.filter((f) => /^[0-9a-f]{64}\.json$/.test(f)).sort()) {
      const text = await readFile(join(this.dir, n), 'utf8').catch(() => undefined);
      if (text === undefined) continue;
      try {
        out.push(JSON.parse(text) as WorkingContainer);
      } catch (err) {
        throw new StevedoreError('CORRUPT_STATE', `${join(this.dir, n)}: not a working container record: ${(err as Error).message}`);
      }
    }
    return out.sort((a, b) => a.created.localeCompare(b.created));
  }

  /** By exact name, full ID, or a unique ID prefix (as buildah). */
  async find(ref: string): Promise<WorkingContainer> {
    const all = await this.list();
    const byName = all.find((c) => c.name === ref);
    if (byName) return byName;
    const byId = /^[0-9a-f]{3,64}$/.test(ref) ? all.filter((c) => c.id.startsWith(ref)) : [];
    if (byId.length === 1) return byId[0]!;
    if (byId.length > 1) throw new InvalidInputError(`container ID prefix "${ref}" is ambiguous`);
    throw new NotFoundError(`no working container named "${ref}" (see stevedore buildah containers)`);
  }

  /** A free name: `wanted` as given (an error when taken), or `<base>-working-container[-N]`. */
  async freeName(base: string, wanted?: string): Promise<string> {
    const taken = new Set((await this.list()).map((c) => c.name));
    if (wanted !== undefined) {
      if (!NAME.test(wanted))
        throw new InvalidInputError(`--name "${wanted}": a container name is letters, digits, '_', '.', '-', starting with a letter or digit`);
      if (taken.has(wanted)) throw new WorkingContainerExistsError(wanted);
      return wanted;
    }
    const stem = base === '' ? 'working-container' : `${base}-working-container`;
    if (!taken.has(stem)) return stem;
    for (let i = 1; ; i++) if (!taken.has(`${stem}-${i}`)) return `${stem}-${i}`;
  }

  newId(): string {
    return randomBytes(32).toString('hex');
  }

  /** Written whole to a temp file and renamed: an interrupted write leaves the old record. */
  async save(c: WorkingContainer): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    await writeFileAtomic(this.#file(c.id), JSON.stringify(c, null, 2));
  }

  async remove(c: WorkingContainer): Promise<void> {
    await rm(this.#file(c.id), { force: true });
  }
}

/** The layer blobs working containers hold (prune keeps them: no image names them until commit). */
export async function layersInUse(store: ImageStore): Promise<Digest[]> {
  return (await new WorkingContainers(store).list()).flatMap((c) => c.state.layers.map((l) => l.digest));
}
