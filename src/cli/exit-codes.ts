/**
 * Exit codes, as Podman's: 125 for an error of the tool itself (bad flag, failed copy), 126 when the
 * container's command cannot be invoked, 127 when it is not found; and ending the process with a
 * status once stdout and stderr are written. Kept free of imports: main.ts loads this for every verb.
 */
export const EXIT_TOOL_ERROR = 125;
export const EXIT_CANNOT_INVOKE = 126;
export const EXIT_NOT_FOUND = 127;

/** Resolves once everything written to the stream so far has been handed to the OS. */
export function flushed(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed || !stream.writable) return resolve();
    // A reader that went away (EPIPE, as with `| head`) is not our error.
    stream.on('error', () => resolve());
    stream.write('', () => resolve());
  });
}

/**
 * Ends the process with `code` once stdout and stderr are written: for a verb whose status is not
 * main()'s (0 after an action that returns, 125 after one that throws).
 */
export async function exitWith(code: number): Promise<never> {
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
  process.exit(code);
}
