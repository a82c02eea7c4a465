import type { Command } from 'commander';
import { findContainer, type ContainerRecord } from '../../runtime/containers.js';
import { ociRuntime } from '../../runtime/oci-runtime.js';
import { ImageStore } from '../../runtime/store/index.js';
import { InvalidInputError } from '../../util/errors.js';
import { parsePositiveInt } from '../options.js';

function runtimeOf(rec: ContainerRecord) {
  return ociRuntime(rec.runtime, rec.stateRoot ? { stateRoot: rec.stateRoot } : {});
}

async function waitExited(store: ImageStore, id: string, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if ((await findContainer(store, id)).status === 'exited') return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

/** `stevedore stop [-t N]`: SIGTERM, then SIGKILL after the grace period, as `podman stop`. */
export function registerStop(program: Command): void {
  program
    .command('stop')
    .description('stop running containers (SIGTERM, then SIGKILL after the grace period)')
    .argument('<containers...>', 'names or ids (prefixes)')
    .option('-t, --time <seconds>', 'grace period before SIGKILL', (v) => (v === '0' ? 0 : parsePositiveInt(v)), 10)
    .option('--root <dir>', 'store root')
    .action(async (refs: string[], o: { time: number; root?: string }) => {
      const store = await ImageStore.open(o.root);
      for (const ref of refs) {
        const rec = await findContainer(store, ref);
        if (rec.status === 'running') {
          await runtimeOf(rec).kill(rec.id, 'SIGTERM', { all: true }).catch(() => undefined);
          if (!(await waitExited(store, rec.id, o.time * 1000))) {
            await runtimeOf(rec).kill(rec.id, 'SIGKILL', { all: true }).catch(() => undefined);
            await waitExited(store, rec.id, 10_000);
          }
        }
        process.stdout.write(`${rec.name}\n`);
      }
    });
}

/** `stevedore kill [-s SIGNAL]`: sends a signal to a running container's processes. */
export function registerKill(program: Command): void {
  program
    .command('kill')
    .description('send a signal to running containers')
    .argument('<containers...>', 'names or ids (prefixes)')
    .option('-s, --signal <signal>', 'signal name or number', 'KILL')
    .option('--root <dir>', 'store root')
    .action(async (refs: string[], o: { signal: string; root?: string }) => {
      if (!/^(SIG)?[A-Z0-9]+$/i.test(o.signal)) throw new InvalidInputError(`invalid signal "${o.signal}"`);
      const store = await ImageStore.open(o.root);
      for (const ref of refs) {
        const rec = await findContainer(store, ref);
        if (rec.status !== 'running') throw new InvalidInputError(`container ${rec.name} is not running`);
        await runtimeOf(rec).kill(rec.id, o.signal.toUpperCase(), { all: true });
        process.stdout.write(`${rec.name}\n`);
      }
    });
}
