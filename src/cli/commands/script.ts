import { spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { InvalidInputError } from '../../util/errors.js';
import { EXIT_TOOL_ERROR, exitWith } from '../exit-codes.js';

/**
 * `stevedore script FILE` / `stevedore script -c TEXT`: runs a shell script (`sh -eu`) with a
 * `buildah` command on PATH that is `stevedore buildah` (this very node and stevedore.js), so a
 * buildah script runs unchanged. The ImageBuild script source runs this in its build Pod
 * (docs/scripted-builds.md). The exit code is the script's.
 */

/** A shell word: single-quoted, a quote as '\''. */
const quote = (s: string): string => `'${s.replaceAll("'", `'\\''`)}'`;

export function registerScript(program: Command): void {
  program
    .command('script')
    .description('run a shell script with `buildah` meaning `stevedore buildah` (scripted builds; sh -eu)')
    .argument('[file]', 'the script file')
    .option('-c, --command <text>', 'the script text instead of a file')
    .option('--workdir <dir>', 'run it in this directory (created if missing)')
    .option('--shell <path>', 'the shell', 'sh')
    .action(async (file: string | undefined, o: { command?: string; workdir?: string; shell: string }) => {
      if ((file === undefined) === (o.command === undefined)) throw new InvalidInputError('script: give a FILE or -c TEXT (one of them)');
      const bin = await mkdtemp(join(process.env.TMPDIR || tmpdir(), 'stevedore-script-'));
      let code = EXIT_TOOL_ERROR;
      try {
        // The shim calls the same node and stevedore.js as this process: no install needed.
        await writeFile(join(bin, 'buildah'), `#!/bin/sh\nexec ${quote(process.execPath)} ${quote(resolve(process.argv[1]!))} buildah "$@"\n`);
        await chmod(join(bin, 'buildah'), 0o755);
        const cwd = o.workdir !== undefined ? resolve(o.workdir) : process.cwd();
        if (o.workdir !== undefined) await mkdir(cwd, { recursive: true });
        const args = o.command !== undefined ? ['-eu', '-c', o.command] : ['-eu', resolve(file!)];
        code = await new Promise<number>((done, fail) => {
          const child = spawn(o.shell, args, {
            cwd,
            stdio: 'inherit',
            env: { ...process.env, PATH: [bin, process.env.PATH ?? '/usr/bin:/bin'].join(delimiter) },
          });
          const pass = (sig: NodeJS.Signals) => child.kill(sig);
          process.on('SIGTERM', pass).on('SIGINT', pass);
          child.once('error', (err) => fail(new InvalidInputError(`script: ${o.shell}: ${err.message}`)));
          child.once('close', (c, sig) => {
            process.off('SIGTERM', pass).off('SIGINT', pass);
            done(c ?? (sig === 'SIGKILL' ? 137 : 143));
          });
        });
      } finally {
        await rm(bin, { recursive: true, force: true });
      }
      // The script's exit code is the verb's (main would set 0 after a returning action).
      await exitWith(code);
    });
}
