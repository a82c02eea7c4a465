/**
 * The result file of the build Pod's steps: one JSON document, at most 4096 bytes (the Kubernetes
 * termination-message limit), so the controller reads it from the container status.
 */
import { writeFile } from 'node:fs/promises';

export const TERMINATION_MESSAGE_LIMIT = 4096;

export type StepResult = { sourceCommit: string } | { error: { reason: string; message: string } };

/** Serialises within the limit: a long message is cut, never the JSON structure. */
export function encodeStepResult(r: StepResult): string {
  let text = JSON.stringify(r);
  if ('error' in r && Buffer.byteLength(text) > TERMINATION_MESSAGE_LIMIT) {
    let message = r.error.message;
    while (Buffer.byteLength(text) > TERMINATION_MESSAGE_LIMIT && message.length > 0) {
      message = message.slice(0, Math.max(0, message.length - (Buffer.byteLength(text) - TERMINATION_MESSAGE_LIMIT) - 3));
      text = JSON.stringify({ error: { reason: r.error.reason, message: `${message}...` } });
    }
  }
  return text;
}

export async function writeStepResult(path: string | undefined, r: StepResult): Promise<void> {
  if (!path) return;
  await writeFile(path, encodeStepResult(r));
}
