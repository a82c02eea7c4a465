import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { digestHex, isDigest, type Digest } from '../../oci/digest.js';
import { writeFileAtomic } from '../../util/fs.js';

/** The compressed form of an uncompressed layer: what a manifest that leaves the machine names. */
export interface CompressedBlobInfo {
  digest: Digest;
  size: number;
  /** Annotations the blob's descriptor must carry (zstd:chunked's TOC positions). */
  annotations?: Record<string, string>;
}

function stringRecord(v: unknown): v is Record<string, string> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string');
}

/**
 * Remembers, for each layer the builder compressed (by diffID), the digest and size of its
 * compressed form, as containers/image's blob-info cache does: a later push names that blob
 * without compressing again, and skips the upload when the registry already has it (HEAD). The
 * layers themselves stay uncompressed in the store. One small file per diffID and compression
 * variant under `<store>/build-cache/blob-info/`; an entry is only ever written from bytes this
 * builder produced, and every byte sent is still verified against it.
 */
export class BlobInfoCache {
  readonly dir: string;
  readonly #variant: string;

  /** `variant` names the compression settings (algorithm, level, block size): other settings, other bytes. */
  constructor(cacheDir: string, variant: string) {
    this.dir = join(cacheDir, 'blob-info');
    this.#variant = variant;
  }

  #file(diffID: Digest): string {
    return join(this.dir, `${digestHex(diffID)}.${this.#variant}.json`);
  }

  async get(diffID: Digest): Promise<CompressedBlobInfo | undefined> {
    try {
      const v = JSON.parse(await readFile(this.#file(diffID), 'utf8')) as Partial<CompressedBlobInfo>;
      if (typeof v.digest !== 'string' || !isDigest(v.digest) || typeof v.size !== 'number' || v.size <= 0) return undefined;
      if (v.annotations === undefined) return { digest: v.digest, size: v.size };
      if (stringRecord(v.annotations)) return { digest: v.digest, size: v.size, annotations: { ...v.annotations } };
    } catch {
      // missing or unreadable: the layer is compressed again
    }
    return undefined;
  }

  async put(diffID: Digest, info: CompressedBlobInfo): Promise<void> {
    await writeFileAtomic(this.#file(diffID), JSON.stringify(info));
  }
}
