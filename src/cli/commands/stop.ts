import type { Command } from 'commander';
import { findContainer } from '../../runtime/containers.js';
import { signalContainer, stopContainer } from '../../runtime/lifecycle/stop.js';
import { ImageStore } from '../../runtime/store/index.js';
import { InvalidInputError } from '../../util/errors.js';
import { parseSeconds } from '../options.js';

/** `stevedore stop [-t N]`: SIGTERM to PID 1, then SIGKILL after the grace period, as `podman stop`. */
export function registerStop(program: Command): void {
  program
    .command('stop')
    .description('stop running containers (SIGTERM to PID 1, then SIGKILL after the grace period)')
    .argument('<containers...>', 'names or ids (prefixes)')
    .option('-t, --time <seconds>', 'grace period before SIGKILL', parseSeconds, 10)
    .option('--root <dir>', 'store root')
    .action(async (refs: string[], o: { time: number; root?: string }) => {
      const store = await ImageStore.open(o.root);
      for (const ref of refs) {
        const rec = await findContainer(store, ref);
        await stopContainer(store, rec.id, { graceMs: o.time * 1000 });
        process.stdout.write(`${ref}\n`);
      }
    });
}

/** `stevedore kill [-s SIGNAL]`: sends a signal to a running container's PID 1, as `podman kill`. */
export function registerKill(program: Command): void {
  program
    .command('kill')
    .description('send a signal to running containers (their PID 1)')
    .argument('<containers...>', 'names or ids (prefixes)')
    .option('-s, --signal <signal>', 'signal name or number', 'KILL')
    .option('--root <dir>', 'store root')
    .action(async (refs: string[], o: { signal: string; root?: string }) => {
      if (!/^(SIG)?[A-Z0-9]+$/i.test(o.signal)) throw new InvalidInputError(`invalid signal "${o.signal}"`);
      const store = await ImageStore.open(o.root);
      for (const ref of refs) {
        const rec = await findContainer(store, ref);
        if (rec.status !== 'running') throw new InvalidInputError(`container ${rec.name} is not running`);
        await signalContainer(rec, o.signal.toUpperCase());
        process.stdout.write(`${ref}\n`);
      }
    });
}
