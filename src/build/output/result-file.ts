import { writeFile } from 'node:fs/promises';

/** Kubernetes keeps at most 4096 bytes of a container's termination message. */
export const RESULT_FILE_LIMIT = 4096;

export type FailureReason = 'InvalidContainerfile' | 'BuildStepFailed' | 'SourceNotFound' | 'PushFailed' | 'Interrupted' | 'AttestationFailed' | 'Error';

export interface BuildSuccess {
  image: string;
  digest: string;
  size: number;
  platforms: { platform: string; digest: string }[];
  /** The registry FROM images and the digests they resolved to (what a rebuild-on-base-change watches). */
  baseImages?: { name: string; digest: string }[];
}

/**
 * The `--result-file` document (the ImageBuild controller reads it as the build pod's termination
 * message). Never over 4096 bytes: a long error message is cut (keeping its end, where a failed
 * RUN's last output lines are) and a long image name list is not written at all.
 */
export function encodeResult(result: BuildSuccess | { error: { reason: FailureReason; message: string } }): string {
  let text = JSON.stringify(result);
  if (Buffer.byteLength(text) <= RESULT_FILE_LIMIT) return text;
  if ('error' in result) {
    const { reason, message } = result.error;
    // Keep the head (what failed) and the tail (a RUN's last output lines); JSON escapes can grow, so shrink until it fits.
    for (let tail = RESULT_FILE_LIMIT - 600; tail > 0; tail = Math.floor(tail * 0.7)) {
      text = JSON.stringify({ error: { reason, message: `${message.slice(0, 300)}\n[...]\n${message.slice(-tail)}` } });
      if (Buffer.byteLength(text) <= RESULT_FILE_LIMIT) return text;
    }
    return JSON.stringify({ error: { reason, message: message.slice(0, 500) } });
  }
  // The bases before the platforms: the controller learns the platforms from the registry, the bases only from here.
  text = JSON.stringify({ ...result, platforms: result.platforms.slice(0, 1), image: result.image.slice(0, 512) });
  if (Buffer.byteLength(text) <= RESULT_FILE_LIMIT) return text;
  const bare = { image: '', digest: result.digest, size: result.size, platforms: [] };
  const bases = [...(result.baseImages ?? [])];
  while (bases.length > 0) {
    text = JSON.stringify({ ...bare, baseImages: bases });
    if (Buffer.byteLength(text) <= RESULT_FILE_LIMIT) return text;
    bases.pop();
  }
  return JSON.stringify(bare);
}

export async function writeResultFile(path: string, result: Parameters<typeof encodeResult>[0]): Promise<void> {
  await writeFile(path, encodeResult(result));
}
