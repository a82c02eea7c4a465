import { ContainerStartError } from '../container.js';
import { WorkdirNotFoundError } from '../spec.js';
import { UnknownUserError } from '../users.js';

/** Podman's status when the container's command cannot be invoked. */
const CANNOT_INVOKE = 126;

/**
 * 126/127 for failures to start the command (Podman's codes); undefined for the tool's own errors.
 * Shared by `run` (attached), the container monitor (`run -d`) and the node agent.
 */
export function startFailureExitCode(err: unknown): number | undefined {
  if (err instanceof ContainerStartError) return err.exitCode;
  // Podman resolves the user and workdir as part of starting the command: 126, like any command it cannot run.
  if (err instanceof UnknownUserError || err instanceof WorkdirNotFoundError) return CANNOT_INVOKE;
  return undefined;
}
