import { ContainerStartError } from '../runtime/container.js';
import { WorkdirNotFoundError } from '../runtime/spec.js';
import { UnknownUserError } from '../runtime/users.js';
import { EXIT_CANNOT_INVOKE } from './exit-codes.js';

/**
 * 126/127 for failures to start the command (Podman's codes); undefined for the tool's own errors.
 * Shared by `run` (attached) and the container monitor (`run -d`).
 */
export function startFailureExitCode(err: unknown): number | undefined {
  if (err instanceof ContainerStartError) return err.exitCode;
  // Podman resolves the user and workdir as part of starting the command: 126, like any command it cannot run.
  if (err instanceof UnknownUserError || err instanceof WorkdirNotFoundError) return EXIT_CANNOT_INVOKE;
  return undefined;
}
