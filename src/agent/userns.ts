/**
 * Per-run user namespaces (the `hostUsers: false` model of Pods): every ContainerRun gets a block
 * of ids of its own (65536 by default) from the node's pool, never shared by two live runs. Its
 * uid 0 is the block's first id, an unprivileged id on the node. The block is held from the run's
 * first start until its containers are removed (deletion, or the run moved away), and the table
 * is persisted under the store, so a restarted agent gives the same run the same block and never
 * hands a held block to another run.
 *
 * The pool: a root agent in the initial user namespace uses a configured range (`--userns-range`);
 * a rootless agent, already root of a user namespace over its subordinate ids, uses every id that
 * namespace maps except its own 0.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { delegatedIdRanges, type IdRange } from '../runtime/idmap.js';
import type { IdMapping } from '../runtime/unpack/index.js';
import { StevedoreError } from '../util/errors.js';
import { writeFileAtomic } from '../util/fs.js';

/** Ids per run, as the kubelet gives each `hostUsers: false` Pod. */
export const DEFAULT_BLOCK_SIZE = 65536;

/** A root agent's pool when none is configured: ids from 65536 on (above every ordinary user), 1024 runs. */
const DEFAULT_ROOT_RANGE: IdRange = { start: 65536, count: 65536 * 1024 };

export class IdsExhaustedError extends StevedoreError {
  constructor(message: string) {
    super('USERNS_IDS_EXHAUSTED', message, { retryable: true });
  }
}

export interface RunIdMap {
  uidMappings: IdMapping[];
  gidMappings: IdMapping[];
}

interface Table {
  blockSize: number;
  /** Run uid → first id of its block (in the agent's own user namespace). */
  blocks: Record<string, number>;
}

/** The pool this process can delegate: configured when it runs in the initial user namespace. */
export async function nodeIdPool(configured: IdRange | undefined): Promise<IdRange[]> {
  const [uid, gid] = await Promise.all([readFile('/proc/self/uid_map', 'utf8'), readFile('/proc/self/gid_map', 'utf8')]);
  const delegated = delegatedIdRanges(uid, gid);
  if (delegated) return delegated;
  return [configured ?? DEFAULT_ROOT_RANGE];
}

export class UserNamespaceAllocator {
  readonly #file: string;
  readonly #pool: IdRange[];
  readonly #table: Table;
  #lock: Promise<unknown> = Promise.resolve();

  private constructor(file: string, pool: IdRange[], table: Table) {
    this.#file = file;
    this.#pool = pool;
    this.#table = table;
  }

  /**
   * Opens the table at `<storeRoot>/agent/userns.json`. A table written with another block size is
   * kept as it is (its blocks stay held); new blocks use the table's size.
   */
  static async open(storeRoot: string, pool: IdRange[], blockSize = DEFAULT_BLOCK_SIZE): Promise<UserNamespaceAllocator> {
    const file = join(storeRoot, 'agent', 'userns.json');
    let table: Table = { blockSize, blocks: {} };
    try {
      const parsed = JSON.parse(await readFile(file, 'utf8')) as Partial<Table>;
      if (typeof parsed.blockSize === 'number' && parsed.blocks && typeof parsed.blocks === 'object')
        table = { blockSize: parsed.blockSize, blocks: { ...parsed.blocks } };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new StevedoreError('USERNS_TABLE_UNREADABLE', `${file}: ${(err as Error).message}`);
    }
    return new UserNamespaceAllocator(file, pool, table);
  }

  get blockSize(): number {
    return this.#table.blockSize;
  }

  /** The runs holding a block, and where it starts. */
  held(): ReadonlyMap<string, number> {
    return new Map(Object.entries(this.#table.blocks));
  }

  /** The run's id map: its held block, or a free one (persisted before it is returned). */
  allocate(owner: string): Promise<RunIdMap> {
    return this.#serial(async () => {
      let start = this.#table.blocks[owner];
      if (start === undefined) {
        start = this.#freeBlock();
        this.#table.blocks[owner] = start;
        await this.#save();
      }
      return this.#map(start);
    });
  }

  /** The run's id map if it holds a block. */
  lookup(owner: string): RunIdMap | undefined {
    const start = this.#table.blocks[owner];
    return start === undefined ? undefined : this.#map(start);
  }

  /** Frees the run's block (after its containers are gone). */
  release(owner: string): Promise<void> {
    return this.#serial(async () => {
      if (this.#table.blocks[owner] === undefined) return;
      delete this.#table.blocks[owner];
      await this.#save();
    });
  }

  #map(start: number): RunIdMap {
    const m = [{ containerID: 0, hostID: start, size: this.#table.blockSize }];
    return { uidMappings: m, gidMappings: m.map((x) => ({ ...x })) };
  }

  #freeBlock(): number {
    const size = this.#table.blockSize;
    const taken = Object.values(this.#table.blocks).sort((a, b) => a - b);
    const overlaps = (s: number): boolean => taken.some((t) => s < t + size && t < s + size);
    for (const r of this.#pool) {
      for (let s = r.start; s + size <= r.start + r.count; s += size) if (!overlaps(s)) return s;
    }
    const total = this.#pool.reduce((n, r) => n + Math.floor(r.count / size), 0);
    throw new IdsExhaustedError(
      `no free block of ${size} ids for a user namespace: all ${total} blocks of the node's range (${this.#pool.map((r) => `${r.start}:${r.count}`).join(', ')}) are held by live runs`,
    );
  }

  async #save(): Promise<void> {
    await writeFileAtomic(this.#file, JSON.stringify(this.#table), 0o600);
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#lock.then(fn, fn);
    this.#lock = next.catch(() => undefined);
    return next;
  }
}
