/**
 * `stevedore build`'s flags (buildah's `bud` flags, BuildKit's names where they differ) turned
 * into the builder engine's options: every check on flag values is here, before any work starts.
 */
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { BuildImageOptions, SecretSource } from '../build/index.js';
import type { RootfsExport } from '../build/output/export.js';
import { hostPlatform, parsePlatform } from '../oci/platform.js';
import type { RuntimeName } from '../runtime/oci-runtime.js';
import type { PullPolicy } from '../runtime/store/index.js';
import { InvalidInputError } from '../util/errors.js';
import type { BuildAttestFlags } from './build-attest.js';
import { parseBool, parseCompressionFormat } from './options.js';

export interface BuildFlags extends BuildAttestFlags {
  file?: string[];
  output?: string[];
  tag?: string[];
  target?: string;
  buildArg?: string[];
  platform?: string;
  allPlatforms?: boolean;
  manifest?: string;
  label?: string[];
  annotation?: string[];
  format?: string;
  timestamp?: string;
  sourceDateEpoch?: string;
  rewriteTimestamp?: boolean;
  layers?: boolean;
  iidfile?: string;
  metadataFile?: string;
  ssh?: string[];
  buildContext?: string[];
  squash?: boolean;
  compressionFormat?: string;
  sourcePolicyFile?: string;
  env?: string[];
  unsetenv?: string[];
  omitHistory?: boolean;
  ignorefile?: string;
  arch?: string;
  os?: string;
  variant?: string;
  jobs?: string;
  cacheFrom?: string[];
  cacheTo?: string[];
  cache?: boolean;
  digestfile?: string;
  quiet?: boolean;
  secret?: string[];
  tlsVerify?: boolean;
  creds?: string;
  authfile?: string;
  resultFile?: string;
  pull?: string;
  runtime?: string;
  root?: string;
}

/** `K=V` pairs; for --build-arg a bare `K` takes the value from this environment (as docker). */
export function keyValues(flag: string, values: readonly string[] | undefined, fromEnv = false): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values ?? []) {
    const eq = v.indexOf('=');
    if (eq === 0) throw new InvalidInputError(`${flag} ${v}: empty name`);
    if (eq < 0) {
      if (fromEnv && process.env[v] !== undefined) out[v] = process.env[v]!;
      else if (!fromEnv) throw new InvalidInputError(`${flag} ${v}: expected KEY=VALUE`);
      continue;
    }
    out[v.slice(0, eq)] = v.slice(eq + 1);
  }
  return out;
}

/** `a=b,c=d` fields of a flag value; a field without `=` maps to undefined. */
function fieldsOf(v: string): Map<string, string | undefined> {
  return new Map(
    v.split(',').map((f) => {
      const eq = f.indexOf('=');
      return eq < 0 ? ([f, undefined] as const) : ([f.slice(0, eq), f.slice(eq + 1)] as const);
    }),
  );
}

/**
 * `--secret id=ID,src=PATH` (also `source=`, `type=file`), `--secret id=ID,env=VAR` (also
 * `type=env,src=VAR`), as buildah and BuildKit; `--secret id=ID` alone takes the environment
 * variable ID if it is set, else the file ID. Values are read here; messages never quote them.
 */
async function parseSecrets(values: readonly string[] | undefined): Promise<Map<string, SecretSource>> {
  const out = new Map<string, SecretSource>();
  for (const v of values ?? []) {
    const fields = fieldsOf(v);
    const id = fields.get('id');
    if (!id) throw new InvalidInputError(`--secret ${v}: expected id=ID,src=PATH or id=ID,env=VAR`);
    const type = fields.get('type');
    if (type !== undefined && type !== 'file' && type !== 'env') throw new InvalidInputError(`--secret id=${id}: type must be file or env, got "${type}"`);
    const src = fields.get('src') ?? fields.get('source');
    const env = fields.get('env') ?? (type === 'env' ? src : undefined);
    if (env !== undefined) {
      const value = process.env[env];
      if (value === undefined) throw new InvalidInputError(`--secret id=${id}: the environment variable ${env} is not set`);
      out.set(id, { value });
      continue;
    }
    if (src === undefined && process.env[id] !== undefined) {
      out.set(id, { value: process.env[id]! });
      continue;
    }
    const file = resolve(src ?? id);
    const st = await stat(file).catch(() => undefined);
    if (!st?.isFile()) throw new InvalidInputError(`--secret id=${id}: ${file} is not a readable file${src === undefined ? ` (and $${id} is not set)` : ''}`);
    out.set(id, { file });
  }
  return out;
}

/** `--ssh default`, `--ssh default=SOCKET`, `--ssh ID=SOCKET` (repeatable): the agent sockets RUN --mount=type=ssh may use. */
async function parseSsh(values: readonly string[] | undefined): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const v of values ?? []) {
    const eq = v.indexOf('=');
    const id = eq < 0 ? v : v.slice(0, eq);
    if (!/^[A-Za-z0-9_.-]+$/.test(id)) throw new InvalidInputError(`--ssh ${v}: expected ID or ID=SOCKET`);
    let socket = eq < 0 ? process.env.SSH_AUTH_SOCK : v.slice(eq + 1);
    if (!socket) throw new InvalidInputError(`--ssh ${v}: no socket given and $SSH_AUTH_SOCK is not set (start ssh-agent, or give --ssh ${id}=SOCKET)`);
    if (socket.includes(',')) throw new InvalidInputError(`--ssh ${v}: only an agent socket can be forwarded, not key files`);
    socket = resolve(socket);
    const st = await stat(socket).catch(() => undefined);
    if (!st?.isSocket()) throw new InvalidInputError(`--ssh ${id}: ${socket} is not a socket (an SSH agent's, as $SSH_AUTH_SOCK names)`);
    out.set(id, socket);
  }
  return out;
}

/** The Containerfile flags: one path, or `-` (the text on stdin); several paths are joined in order, as buildah does. */
async function containerfileFrom(files: readonly string[] | undefined, context: string): Promise<{ file?: string; text?: string; more?: string[] }> {
  if (!files || files.length === 0) return {};
  if (files.length > 1) {
    if (files.includes('-')) throw new InvalidInputError('-f - (stdin) cannot be joined with other -f files');
    return { file: files[0]!, more: files.slice(1) };
  }
  const file = files[0]!;
  if (file !== '-') return { file };
  if (context === '-') throw new InvalidInputError('-f - and a context of - both read stdin: give one of them as a path');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    size += (chunk as Buffer).length;
    if (size > CONTAINERFILE_LIMIT) throw new InvalidInputError(`-f -: the Containerfile on stdin is larger than ${CONTAINERFILE_LIMIT} bytes`);
    chunks.push(chunk as Buffer);
  }
  return { text: Buffer.concat(chunks).toString('utf8') };
}

/** A Containerfile read from stdin larger than this is refused (BuildKit's own limit is far below). */
const CONTAINERFILE_LIMIT = 8 << 20;

/**
 * buildah's boolean flags are also written `--flag=true` / `--flag=false` (Go's flag syntax), which
 * commander reads as unknown options: `--flag=true` becomes `--flag`, `--flag=false` is dropped
 * (each of these flags is off by default).
 */
const GO_BOOL_FLAGS = ['layers', 'rewrite-timestamp', 'squash', 'omit-history', 'skip-unused-stages', 'rm', 'force-rm', 'identity-label'];

const PULL_POLICIES = ['always', 'missing', 'never', 'true', 'false', 'newer'];

export function acceptGoBools(cmd: Command): Command {
  const parse = cmd.parseOptions.bind(cmd);
  cmd.parseOptions = (argv: string[]) => {
    const out: string[] = [];
    for (const [i, a] of argv.entries()) {
      if (a === '--') {
        out.push(...argv.slice(i));
        break;
      }
      // buildah's --pull is also a bare flag or true/false: true (pull when newer) is always here, false is missing.
      if (a === '--pull' && !PULL_POLICIES.includes(argv[i + 1] ?? '')) {
        out.push('--pull=always');
        continue;
      }
      const pull = /^--pull=(true|false|newer)$/.exec(a);
      if (pull) {
        out.push(`--pull=${pull[1] === 'false' ? 'missing' : 'always'}`);
        continue;
      }
      const m = /^--([a-z-]+)=(.*)$/.exec(a);
      if (!m || !GO_BOOL_FLAGS.includes(m[1]!)) {
        out.push(a);
        continue;
      }
      if (parseBool(m[2]!)) out.push(`--${m[1]}`);
    }
    return parse(out);
  };
  return cmd;
}

/** `-o type=local,dest=DIR`, `-o type=tar,dest=FILE`, or `-o DIR` (buildah's short form). */
function parseOutputs(values: readonly string[] | undefined): RootfsExport[] {
  return (values ?? []).map((v) => {
    if (v === '-') throw new InvalidInputError('--output -: a tar on stdout is not supported; give type=tar,dest=FILE');
    if (!v.includes('=')) return { type: 'local', dest: resolve(v) };
    const f = fieldsOf(v);
    const type = f.get('type') ?? 'local';
    const dest = f.get('dest');
    if (type !== 'local' && type !== 'tar') throw new InvalidInputError(`--output ${v}: type must be local or tar (images go to -t)`);
    if (!dest || dest === '-') throw new InvalidInputError(`--output ${v}: dest=PATH is needed`);
    return { type, dest: resolve(dest) };
  });
}

/** The engine options the flags ask for (all but the store, context, registry credentials, reporter and signal). */
export type FlagOptions = Omit<BuildImageOptions, 'store' | 'context' | 'pullContext' | 'destContext' | 'reporter' | 'signal' | 'stdin'>;

/** Checks the flags and reads what they name (Containerfile on stdin, secrets, the source policy). */
export async function optionsFromFlags(o: BuildFlags, context: string): Promise<FlagOptions> {
  if (o.allPlatforms && (o.platform || o.arch || o.os || o.variant))
    throw new InvalidInputError('give --platform (or --os/--arch/--variant) or --all-platforms, not both');
  if (o.format !== 'oci' && o.format !== 'docker') throw new InvalidInputError(`--format must be oci or docker, got "${o.format}"`);
  // buildah's true (pull when newer: always here) and false (missing) too.
  const pull = ({ true: 'always', newer: 'always', false: 'missing' } as Record<string, string>)[o.pull ?? ''] ?? o.pull ?? 'missing';
  if (!['always', 'missing', 'never'].includes(pull)) throw new InvalidInputError(`--pull must be always, missing, never, true or false, got "${o.pull}"`);
  if (o.timestamp !== undefined && o.sourceDateEpoch !== undefined && o.timestamp !== o.sourceDateEpoch)
    throw new InvalidInputError('--timestamp and --source-date-epoch name the same setting: give one');
  const epoch = o.timestamp ?? o.sourceDateEpoch ?? process.env.SOURCE_DATE_EPOCH;
  if (epoch !== undefined && !/^\d+$/.test(epoch))
    throw new InvalidInputError(`${o.sourceDateEpoch !== undefined ? '--source-date-epoch' : '--timestamp'} must be Unix seconds, got "${epoch}"`);
  const compression = parseCompressionFormat(o.compressionFormat ?? 'gzip');
  const cf = await containerfileFrom(o.file, context);
  if (o.jobs !== undefined && !/^\d+$/.test(o.jobs)) throw new InvalidInputError(`--jobs must be a number, got "${o.jobs}"`);
  if ((o.os || o.arch || o.variant) && o.platform) throw new InvalidInputError('give --platform, or --os/--arch/--variant, not both');
  const host = hostPlatform();
  const platform = o.os || o.arch || o.variant ? `${o.os ?? host.os}/${o.arch ?? host.architecture}${o.variant ? `/${o.variant}` : ''}` : o.platform;
  const exports = parseOutputs(o.output);
  const secrets = await parseSecrets(o.secret);
  const sshAgents = await parseSsh(o.ssh);
  const sourcePolicy = await sourcePolicyFrom(o.sourcePolicyFile, process.env.STEVEDORE_SOURCE_POLICY);
  return {
    ...(cf.file !== undefined ? { file: cf.file } : {}),
    ...(cf.text !== undefined ? { containerfileText: cf.text } : {}),
    ...(cf.more ? { moreFiles: cf.more } : {}),
    tags: o.tag ?? [],
    ...(o.target !== undefined ? { target: o.target } : {}),
    buildArgs: keyValues('--build-arg', o.buildArg, true),
    ...(platform ? { platforms: platform.split(',').map((p) => parsePlatform(p.trim())) } : {}),
    ...(o.allPlatforms ? { allPlatforms: true } : {}),
    labels: keyValues('--label', o.label),
    annotations: keyValues('--annotation', o.annotation),
    format: o.format,
    ...(epoch !== undefined ? { timestamp: Number(epoch) } : {}),
    noCache: o.cache === false,
    cacheFrom: o.cacheFrom ?? [],
    cacheTo: o.cacheTo ?? [],
    secrets,
    sshAgents,
    ...(exports.length > 0 ? { exports } : {}),
    buildContexts: keyValues('--build-context', o.buildContext),
    ...(o.squash ? { squash: true } : {}),
    compressionFormat: compression,
    ...(sourcePolicy ? { sourcePolicy } : {}),
    ...(o.env ? { env: keyValues('--env', o.env) } : {}),
    ...(o.unsetenv ? { unsetEnv: o.unsetenv } : {}),
    ...(o.omitHistory ? { omitHistory: true } : {}),
    ...(o.ignorefile !== undefined ? { ignoreFile: o.ignorefile } : {}),
    pull: pull as PullPolicy,
    runtime: (o.runtime ?? 'runc') as RuntimeName,
  };
}

/** The policy of --source-policy-file, or of STEVEDORE_SOURCE_POLICY (an administrator's, in a build Pod); never both. */
async function sourcePolicyFrom(file: string | undefined, env: string | undefined) {
  if (file === undefined && (env === undefined || env === '')) return undefined;
  const { SourcePolicy, SOURCE_POLICY_ENV } = await import('../build/source-policy.js');
  if (env !== undefined && env !== '') {
    if (file !== undefined) throw new InvalidInputError(`--source-policy-file cannot be given while ${SOURCE_POLICY_ENV} sets the source policy`);
    return SourcePolicy.parse(env, SOURCE_POLICY_ENV);
  }
  return SourcePolicy.load(file!);
}
