import { resolve } from 'node:path';
import type { Command } from 'commander';
import { BuildStepError } from '../../build/executor/errors.js';
import type { WorkingContainer } from '../../build/working/records.js';
import type { WorkingOptions } from '../../build/working/session.js';
import { needsUserNamespace, REEXEC_ENV, reexecInUserNamespace } from '../../runtime/rootless.js';
import { ImageStore } from '../../runtime/store/index.js';
import { InvalidInputError } from '../../util/errors.js';
import { collect, contextFrom, parseBool } from '../options.js';
import { registerBuildahPush } from './buildah-push.js';
import { signalOnInterrupt } from '../signals.js';
import { exitWith } from '../exit-codes.js';

/**
 * `stevedore buildah from|run|copy|add|config|commit|rm|containers`: Buildah's scripted builds
 * ("working containers") on the store and runtime `stevedore build` uses. With
 * `alias buildah='stevedore buildah'` a buildah script runs unchanged (docs/scripted-builds.md).
 */

interface StoreFlags {
  root?: string;
  tlsVerify?: boolean;
  creds?: string;
  authfile?: string;
  runtime?: 'runc' | 'crun';
}

const engine = (): Promise<typeof import('../../build/working/verbs.js')> => import('../../build/working/verbs.js');

async function options(o: StoreFlags): Promise<WorkingOptions> {
  // Snapshots and RUN containers need root or a user namespace, as for `build`.
  if (needsUserNamespace()) await exitWith(await reexecInUserNamespace());
  return {
    store: await ImageStore.open(o.root !== undefined ? resolve(o.root) : undefined),
    pullContext: contextFrom({ creds: o.creds, tlsVerify: o.tlsVerify, authfile: o.authfile }),
    runtime: o.runtime ?? 'runc',
    output: (c) => process.stdout.write(c),
    warn: (w) => process.stderr.write(`WARN: ${w}\n`),
    signal: signalOnInterrupt(),
  };
}

function storeOptions(cmd: Command): Command {
  return cmd
    .option('--root <dir>', 'store root (default: $STEVEDORE_ROOT, /var/lib/stevedore for root, else $XDG_DATA_HOME/stevedore)')
    .option('--tls-verify <bool>', 'require HTTPS and verified certificates for registries (loopback may use HTTP)', parseBool)
    .option('--creds <user:password>', 'registry credentials')
    .option('--authfile <path>', 'auth file')
    .option('--runtime <runc|crun>', 'OCI runtime for run', 'runc');
}

/** buildah's `containers` table: IDs and the image name cut to fit, unless --notruncate. */
function containersTable(all: readonly WorkingContainer[], o: { noheading?: boolean; notruncate?: boolean }): string {
  const cut = (s: string, n: number): string => (o.notruncate || s.length <= n ? s : `${s.slice(0, n - 3)}...`);
  const id = (s: string): string => (o.notruncate ? s : s.slice(0, 12));
  const lines = o.noheading ? [] : [`${'CONTAINER ID'.padEnd(12)}  BUILDER  ${'IMAGE ID'.padEnd(12)} ${'IMAGE NAME'.padEnd(32)} CONTAINER NAME`];
  for (const c of all) lines.push(`${id(c.id).padEnd(12)}     *     ${id(c.imageId).padEnd(12)} ${cut(c.image, 32).padEnd(32)} ${c.name}`);
  return lines.map((l) => `${l}\n`).join('');
}

export function registerBuildah(program: Command): void {
  const group = program
    .command('buildah')
    .description("Buildah's scripted builds: working containers (from, run, copy, add, config, commit, push, rm, containers)");

  storeOptions(group.command('from').description('create a working container from an image (or scratch); prints its name').argument('<image>'))
    .option('--name <name>', "the container's name (default: <image>-working-container[-N])")
    .option('--pull <always|missing|never>', 'pull policy for the image', 'missing')
    .option('-q, --quiet', 'print only the container name (the default here)')
    .action(async (image: string, o: StoreFlags & { name?: string; pull?: 'always' | 'missing' | 'never' }) => {
      const c = await (await engine()).createWorkingContainer(
        { ...(await options(o)), ...(o.pull ? { pull: o.pull } : {}) },
        image,
        o.name !== undefined ? { name: o.name } : {},
      );
      process.stdout.write(`${c.name}\n`);
    });

  storeOptions(
    group
      .command('run')
      .description('run a command in a working container; the files it changes become part of it')
      .argument('<container>')
      .argument('<command...>', 'after --: the command and its arguments (no shell)'),
  )
    .option('-e, --env <KEY=VALUE>', 'environment for this command only (repeatable)', collect)
    .option('--user <user[:group]>', 'user for this command')
    .option('--workingdir <dir>', 'working directory for this command')
    .action(async (container: string, argv: string[], o: StoreFlags & { env?: string[]; user?: string; workingdir?: string }) => {
      try {
        await (await engine()).runInWorkingContainer(await options(o), container, argv, {
          ...(o.env ? { env: o.env } : {}),
          ...(o.user !== undefined ? { user: o.user } : {}),
          ...(o.workingdir !== undefined ? { workingdir: o.workingdir } : {}),
        });
      } catch (err) {
        // As buildah: the command's own exit code, with the reason on stderr.
        if (err instanceof BuildStepError && err.exitCode !== undefined) {
          process.stderr.write(`Error: ${err.message.split('\n')[0]}\n`);
          await exitWith(err.exitCode);
        }
        throw err;
      }
    });

  for (const verb of ['copy', 'add'] as const) {
    storeOptions(
      group
        .command(verb)
        .description(verb === 'copy' ? 'copy host files into a working container' : 'like copy, and local archives are unpacked, URLs fetched')
        .argument('<container>')
        .argument('<paths...>', 'SRC... DEST'),
    )
      .option('--chown <user[:group]>', 'owner of the copied files (names resolved in the container)')
      .option('--chmod <mode>', 'mode of the copied files (octal)')
      .action(async (container: string, paths: string[], o: StoreFlags & { chown?: string; chmod?: string }) => {
        if (paths.length < 2) throw new InvalidInputError(`${verb}: want SRC... DEST`);
        const dest = paths[paths.length - 1]!;
        await (await engine()).copyIntoWorkingContainer(await options(o), container, verb, paths.slice(0, -1), dest, {
          ...(o.chown !== undefined ? { chown: o.chown } : {}),
          ...(o.chmod !== undefined ? { chmod: o.chmod } : {}),
        });
      });
  }

  group
    .command('config')
    .description("change a working container's image config")
    .argument('<container>')
    .option('-e, --env <KEY=VALUE>', 'set (KEY- removes; repeatable)', collect)
    .option('-p, --port <port[/proto]>', 'expose (PORT- removes; repeatable)', collect)
    .option('--cmd <command>', 'CMD: a JSON array, or words split as a shell would')
    .option('--entrypoint <command>', 'ENTRYPOINT: a JSON array, or text run with /bin/sh -c')
    .option('--workingdir <dir>', 'working directory')
    .option('-u, --user <user[:group]>', 'user')
    .option('-l, --label <KEY=VALUE>', 'label (KEY- removes; repeatable)', collect)
    .option('-a, --annotation <KEY=VALUE>', 'manifest annotation at commit (KEY- removes; repeatable)', collect)
    .option('--author <author>', 'image author')
    .option('--created-by <text>', 'created_by of the history entry commit writes')
    .option('--root <dir>', 'store root')
    .action(
      async (
        container: string,
        o: {
          root?: string;
          env?: string[];
          port?: string[];
          cmd?: string;
          entrypoint?: string;
          workingdir?: string;
          user?: string;
          label?: string[];
          annotation?: string[];
          author?: string;
          createdBy?: string;
        },
      ) => {
        const { root, ...edits } = o;
        const store = await ImageStore.open(root !== undefined ? resolve(root) : undefined);
        await (await engine()).configureWorkingContainer({ store }, container, edits);
      },
    );

  storeOptions(
    group
      .command('commit')
      .description('write a working container as an image; prints the image ID')
      .argument('<container>')
      .argument('<image>', 'a local name (NAME:TAG), a registry (docker://HOST/REPO:TAG) or a transport (oci:DIR:TAG)'),
  )
    .option('--squash', 'the whole filesystem as one layer, with one history entry')
    .option('-f, --format <oci|docker>', 'manifest and config format', 'oci')
    .option('-q, --quiet', 'print only the image ID (the default here)')
    .option('--rm', 'remove the working container after the commit')
    .action(async (container: string, image: string, o: StoreFlags & { squash?: boolean; format?: string; rm?: boolean }) => {
      if (o.format !== 'oci' && o.format !== 'docker') throw new InvalidInputError(`--format ${o.format}: want oci or docker`);
      const e = await engine();
      const opts = await options(o);
      const r = await e.commitWorkingContainer(opts, container, image, { format: o.format, ...(o.squash ? { squash: true } : {}) });
      if (o.rm) await e.removeWorkingContainers(opts, [container]);
      process.stdout.write(`${r.imageId}\n`);
    });

  group
    .command('rm')
    .description('remove working containers; prints their IDs')
    .argument('[containers...]')
    .option('-a, --all', 'every working container')
    .option('--root <dir>', 'store root')
    .action(async (refs: string[], o: { all?: boolean; root?: string }) => {
      if (!o.all && refs.length === 0) throw new InvalidInputError('rm: name a container, or --all');
      if (o.all && refs.length > 0) throw new InvalidInputError('rm: --all takes no container names');
      const store = await ImageStore.open(o.root !== undefined ? resolve(o.root) : undefined);
      for (const c of await (await engine()).removeWorkingContainers({ store }, o.all ? 'all' : refs)) process.stdout.write(`${c.id}\n`);
    });

  group
    .command('unshare')
    .description('run a command (default: $SHELL) as root of the user namespace the other verbs use; stevedore commands in it do not re-enter one')
    .argument('[command...]', 'after --: the command and its arguments')
    .action(async (argv: string[]) => {
      // Outside the namespace: the same command again, inside it (root needs none).
      if (needsUserNamespace()) await exitWith(await reexecInUserNamespace());
      const [cmd = process.env.SHELL || '/bin/sh', ...args] = argv;
      const { spawn } = await import('node:child_process');
      const code = await new Promise<number>((done, fail) => {
        const child = spawn(cmd, args, { stdio: 'inherit', env: { ...process.env, [REEXEC_ENV]: '1' } });
        child.once('error', (err) => fail(new InvalidInputError(`unshare: ${cmd}: ${err.message}`)));
        child.once('close', (c, sig) => done(c ?? (sig ? 128 + 9 : 125)));
      });
      await exitWith(code);
    });

  registerBuildahPush(group);

  group
    .command('containers')
    .description("list working containers (buildah's columns)")
    .option('-q, --quiet', 'IDs only')
    .option('-n, --noheading', 'no header line')
    .option('--notruncate', 'full IDs and names')
    .option('--json', 'JSON, as buildah containers --json')
    .option('--root <dir>', 'store root')
    .action(async (o: { quiet?: boolean; noheading?: boolean; notruncate?: boolean; json?: boolean; root?: string }) => {
      const store = await ImageStore.open(o.root !== undefined ? resolve(o.root) : undefined);
      const all = await (await engine()).listWorkingContainers({ store });
      if (o.json) {
        process.stdout.write(
          `${JSON.stringify(
            all.map((c) => ({ id: c.id, builder: true, imageid: c.imageId, imagename: c.image, containername: c.name })),
            null,
            4,
          )}\n`,
        );
      } else if (o.quiet) process.stdout.write(all.map((c) => `${o.notruncate ? c.id : c.id.slice(0, 12)}\n`).join(''));
      else process.stdout.write(containersTable(all, o));
    });
}
