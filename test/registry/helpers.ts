import { copyReference, type CopyOptions, type CopyResult } from '../../src/copy/copy.js';
import { parseImageName } from '../../src/transports/index.js';
import type { TransportContext } from '../../src/transports/types.js';
import type { StevedoreError } from '../../src/util/errors.js';

/** Copies between two image names with the engine, as `stevedore copy` does. */
export function copy(
  src: string,
  dest: string,
  opts: CopyOptions & { srcContext?: TransportContext; destContext?: TransportContext } = {},
): Promise<CopyResult> {
  return copyReference(parseImageName(src), parseImageName(dest), opts);
}

/** The error a promise rejects with; fails the test if it resolves. */
export async function caught(p: Promise<unknown>): Promise<StevedoreError> {
  try {
    await p;
  } catch (err) {
    return err as StevedoreError;
  }
  throw new Error('expected a rejection');
}
