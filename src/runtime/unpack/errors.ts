import { StevedoreError } from '../../util/errors.js';

/**
 * A layer entry that would write, link or delete outside the rootfs, or that the unpacker does not
 * trust itself to apply faithfully. Policy: one such entry aborts the whole unpack. The rootfs is
 * then a partial snapshot that the caller must discard; nothing is ever "skipped and continued",
 * because a layer that tries one escape is not a layer whose other entries deserve trust.
 */
export class UnsafeLayerEntryError extends StevedoreError {
  /** The entry's name as written in the tar (before any cleaning). */
  readonly path: string;
  readonly reason: string;

  constructor(path: string, reason: string, opts: { cause?: unknown } = {}) {
    super('UNSAFE_LAYER_ENTRY', `refusing layer entry ${JSON.stringify(path)}: ${reason}`, opts);
    this.path = path;
    this.reason = reason;
  }
}

/** A decompression bomb, or merely a layer bigger than the caller allowed. */
export class LayerTooLargeError extends StevedoreError {
  readonly limit: number;
  readonly what: 'entries' | 'bytes';

  constructor(what: 'entries' | 'bytes', limit: number) {
    super(
      'LAYER_TOO_LARGE',
      what === 'bytes' ? `layer expands past the ${limit}-byte limit (uncompressed tar stream)` : `layer holds more than the ${limit}-entry limit`,
    );
    this.limit = limit;
    this.what = what;
  }
}

/** Symlink resolution inside a root went round more than the kernel's own limit would allow. */
export class SymlinkLoopError extends StevedoreError {
  readonly path: string;
  constructor(path: string, hops: number) {
    super('SYMLINK_LOOP', `too many levels of symbolic links (more than ${hops}) resolving ${JSON.stringify(path)}`);
    this.path = path;
  }
}
