import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * The store's root: `STEVEDORE_ROOT` if set, else /var/lib/stevedore for root, else
 * `$XDG_DATA_HOME/stevedore` (`~/.local/share/stevedore`), as Podman's graphroot.
 */
export function defaultStoreRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.STEVEDORE_ROOT) return env.STEVEDORE_ROOT;
  if (process.geteuid?.() === 0) return '/var/lib/stevedore';
  return join(env.XDG_DATA_HOME || join(homedir(), '.local', 'share'), 'stevedore');
}
