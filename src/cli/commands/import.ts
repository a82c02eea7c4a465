import type { Command } from 'commander';
import { importRootfs } from '../../build/import.js';
import type { ContainerConfig } from '../../oci/config.js';
import { parsePlatform } from '../../oci/platform.js';
import { parseImageName } from '../../transports/index.js';
import { InvalidInputError } from '../../util/errors.js';
import { collect, contextFrom, parseBool } from '../options.js';
import { signalOnInterrupt } from '../signals.js';

interface ImportFlags {
  cmd?: string;
  entrypoint?: string;
  env?: string[];
  workdir?: string;
  user?: string;
  label?: string[];
  platform?: string;
  timestamp?: string;
  message?: string;
  destCreds?: string;
  destTlsVerify?: boolean;
  authfile?: string;
  digestfile?: string;
}

/** `--cmd '["sh","-c","x"]'` (JSON) or `--cmd 'sh -c x'` (split on spaces), as Containerfile forms. */
function commandValue(flag: string, value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  if (value.trim().startsWith('[')) {
    const parsed = JSON.parse(value) as unknown;
    if (!Array.isArray(parsed) || parsed.some((s) => typeof s !== 'string')) throw new InvalidInputError(`${flag} must be a JSON array of strings`);
    return parsed as string[];
  }
  return value.split(/\s+/).filter(Boolean);
}

export function registerImport(program: Command): void {
  program
    .command('import')
    .description('make a one-layer image from a root filesystem directory or tarball (like podman import)')
    .argument('<rootfs>', 'a directory, or a tar / tar.gz file')
    .argument('<destination>', 'e.g. oci:/dir:tag, docker://registry/repo:tag')
    .option('--cmd <command>', 'default command (JSON array or words)')
    .option('--entrypoint <command>', 'entrypoint (JSON array or words)')
    .option('-e, --env <KEY=VALUE>', 'environment (repeatable)', collect)
    .option('-w, --workdir <dir>', 'working directory')
    .option('-u, --user <user>', 'default user')
    .option('-l, --label <KEY=VALUE>', 'label (repeatable)', collect)
    .option('--platform <os/arch[/variant]>', 'platform recorded in the config (default: this host)')
    .option('--timestamp <seconds>', 'creation time and file mtimes as Unix seconds (default: $SOURCE_DATE_EPOCH or now)')
    .option('-m, --message <text>', 'history comment')
    .option('--dest-creds <user:password>', 'credentials for a registry destination')
    .option('--dest-tls-verify <bool>', 'require HTTPS for a registry destination', parseBool)
    .option('--authfile <path>', 'auth file')
    .option('--digestfile <path>', 'write the image digest here')
    .action(async (rootfs: string, destination: string, o: ImportFlags) => {
      const config: ContainerConfig = { Env: o.env ?? ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'] };
      const cmd = commandValue('--cmd', o.cmd);
      const entrypoint = commandValue('--entrypoint', o.entrypoint);
      if (cmd) config.Cmd = cmd;
      if (entrypoint) config.Entrypoint = entrypoint;
      if (o.workdir) config.WorkingDir = o.workdir;
      if (o.user) config.User = o.user;
      if (o.label) config.Labels = Object.fromEntries(o.label.map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
      const epoch = o.timestamp ?? process.env.SOURCE_DATE_EPOCH;
      if (epoch !== undefined && !/^\d+$/.test(epoch)) throw new InvalidInputError(`--timestamp must be Unix seconds, got "${epoch}"`);
      const result = await importRootfs(rootfs, parseImageName(destination), {
        config,
        platform: o.platform ? parsePlatform(o.platform) : undefined,
        created: epoch !== undefined ? new Date(Number(epoch) * 1000) : undefined,
        message: o.message,
        destContext: contextFrom({ creds: o.destCreds, tlsVerify: o.destTlsVerify, authfile: o.authfile }),
        signal: signalOnInterrupt(),
      });
      if (o.digestfile) {
        const { writeFile } = await import('node:fs/promises');
        await writeFile(o.digestfile, result.digest);
      }
      process.stdout.write(`${result.digest}\n`);
    });
}
