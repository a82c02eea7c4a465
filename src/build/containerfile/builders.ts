import { parseDurationNs } from '../../util/duration.js';
import { formatDuration } from './duration.js';
import { ContainerfileError, closest } from './errors.js';
import { FlagError, checkChecksum, checkChmod, hasVariable, parseFlags, type FlagSpec, type ParsedFlags } from './flags.js';
import { chompHeredoc, parseHeredocMarker, type Heredoc } from './heredoc.js';
import { INSTRUCTION_KINDS, type CommandLine, type CopySource, type Instruction, type InstructionKind, type KeyValue } from './instructions.js';
import { MountError, parseMount, type Mount } from './mounts.js';
import { NotStringArrayError, parseJsonArray, splitCommand, splitQuotedWords, splitWhitespace } from './words.js';

/**
 * Turns one logical line (plus its heredoc bodies) into a typed instruction, applying BuildKit's
 * per-instruction argument rules. Nothing is expanded here.
 */
export interface RawLine {
  text: string;
  line: number;
  endLine: number;
  heredocs: Heredoc[];
}

export interface BuildContext {
  file: string;
  escape: string;
}

const STAGE_NAME = /^[a-z][a-z0-9-_.]*$/;

export function isInstructionKind(word: string): word is InstructionKind {
  return (INSTRUCTION_KINDS as readonly string[]).includes(word);
}

/** The instruction word of a line, upper-cased, checked against the known set. */
export function instructionKind(text: string, ctx: BuildContext, line: number): InstructionKind {
  const word = splitCommand(text).command;
  const kind = word.toUpperCase();
  if (isInstructionKind(kind)) return kind;
  const hint = closest(kind, INSTRUCTION_KINDS);
  throw new ContainerfileError({ file: ctx.file, line }, `unknown instruction "${word}"${hint ? ` (did you mean ${hint}?)` : ''}`);
}

export function buildInstruction(raw: RawLine, ctx: BuildContext): Instruction {
  const { flags, rest } = splitCommand(raw.text);
  const kind = instructionKind(raw.text, ctx, raw.line);
  // Typed as a declared function type so TypeScript narrows after `if (...) fail(...)`.
  const fail: (detail: string) => never = (detail) => {
    throw new ContainerfileError({ file: ctx.file, line: raw.line, instruction: kind }, detail);
  };
  const base = { line: raw.line, endLine: raw.endLine, original: raw.text };
  const flagsOf = (spec: FlagSpec): ParsedFlags => {
    try {
      return parseFlags(flags, spec);
    } catch (err) {
      if (err instanceof FlagError) return fail(err.message);
      throw err;
    }
  };
  const json = (): string[] | undefined => {
    try {
      return parseJsonArray(rest);
    } catch (err) {
      if (err instanceof NotStringArrayError) return fail(err.message);
      throw err;
    }
  };
  const commandLine = (): CommandLine => {
    const args = json();
    return args ? { form: 'exec', args } : { form: 'shell', command: rest };
  };
  const one = (what: string): string => (rest === '' ? fail(`${kind} requires exactly one argument (${what})`) : rest);

  switch (kind) {
    case 'FROM': {
      const f = flagsOf({ platform: 'string' });
      const args = splitWhitespace(rest);
      const asForm = args.length === 3 && args[1]!.toUpperCase() === 'AS';
      if (args.length !== 1 && !asForm) fail('FROM requires either one or three arguments (FROM image [AS name])');
      const out: Instruction = { kind, ...base, image: args[0]! };
      if (asForm) {
        const name = args[2]!.toLowerCase();
        if (!STAGE_NAME.test(name)) {
          fail(`invalid name for build stage: "${args[2]}", name can't start with a number or contain symbols`);
        }
        out.stageName = name;
      }
      const platform = f.strings.get('platform');
      if (platform !== undefined) out.platform = platform;
      return out;
    }

    case 'RUN': {
      const f = flagsOf({ mount: 'list', network: 'string', security: 'string' });
      if (rest === '') fail('RUN requires at least one argument');
      const mounts: Mount[] = [];
      for (const text of f.lists.get('mount') ?? []) {
        try {
          mounts.push(parseMount(text));
        } catch (err) {
          if (err instanceof MountError) fail(`--mount=${text}: ${err.message}`);
          throw err;
        }
      }
      const out: Instruction = { kind, ...base, command: commandLine(), heredocs: raw.heredocs, mounts };
      const network = f.strings.get('network');
      if (network !== undefined) {
        if (network !== 'default' && network !== 'none' && network !== 'host') {
          fail(`--network must be default, none or host, got "${network}"`);
        }
        out.network = network;
      }
      const security = f.strings.get('security');
      if (security !== undefined) {
        if (security !== 'sandbox' && security !== 'insecure') fail(`--security must be sandbox or insecure, got "${security}"`);
        out.security = security;
      }
      return out;
    }

    case 'COPY':
    case 'ADD': {
      const f =
        kind === 'COPY'
          ? flagsOf({ from: 'string', chown: 'string', chmod: 'string', link: 'bool', parents: 'bool', exclude: 'list' })
          : flagsOf({
              chown: 'string',
              chmod: 'string',
              link: 'bool',
              'keep-git-dir': 'bool',
              checksum: 'string',
              exclude: 'list',
              unpack: 'bool',
            });
      const jsonArgs = json();
      const args = jsonArgs ?? splitWhitespace(rest);
      if (args.length < 2) {
        fail(`${kind} requires at least two arguments, but only ${args.length === 0 ? 'none were' : 'one was'} provided. Destination could not be determined`);
      }
      const dest = args[args.length - 1]!;
      // Heredocs are only markers in the shell form; in JSON, "<<EOT" is a file name.
      const marker = (w: string) => (jsonArgs ? undefined : parseHeredocMarker(w));
      if (marker(dest)) fail(`${kind} cannot accept a heredoc as a destination`);
      const byName = new Map(raw.heredocs.map((h) => [h.name, h]));
      const sources: CopySource[] = args.slice(0, -1).map((src): CopySource => {
        const m = marker(src);
        if (!m) return { kind: 'path', path: src };
        const doc = byName.get(m.name);
        const content = doc ? (doc.chomp ? chompHeredoc(doc.content) : doc.content) : '';
        return { kind: 'heredoc', name: m.name, content, expand: m.expand };
      });
      const common = { ...base, sources, dest, link: f.bools.get('link') ?? false, exclude: f.lists.get('exclude') ?? [] };
      const chown = f.strings.get('chown');
      const chmod = f.strings.get('chmod');
      if (chmod !== undefined && !hasVariable(chmod)) {
        const problem = checkChmod(chmod);
        if (problem) fail(problem);
      }
      const out: Instruction =
        kind === 'COPY' ? { kind, ...common, parents: f.bools.get('parents') ?? false } : { kind, ...common, keepGitDir: f.bools.get('keep-git-dir') ?? false };
      if (chown !== undefined) out.chown = chown;
      if (chmod !== undefined) out.chmod = chmod;
      if (out.kind === 'COPY') {
        const from = f.strings.get('from');
        if (from !== undefined) {
          if (from === '') fail('--from requires a stage name, index or image');
          out.from = from;
        }
      } else {
        const checksum = f.strings.get('checksum');
        if (checksum !== undefined) {
          if (!hasVariable(checksum)) {
            const problem = checkChecksum(checksum);
            if (problem) fail(problem);
          }
          out.checksum = checksum;
        }
        const unpack = f.bools.get('unpack');
        if (unpack !== undefined) out.unpack = unpack;
      }
      return out;
    }

    case 'ENV':
    case 'LABEL': {
      flagsOf({});
      const { pairs, legacy } = nameValues(rest, kind, ctx.escape, fail);
      return { kind, ...base, pairs, legacy };
    }

    case 'ARG': {
      flagsOf({});
      const words = splitQuotedWords(rest, ctx.escape);
      if (words.length === 0) fail('ARG requires at least one argument');
      const args = words.map((w) => {
        const eq = w.indexOf('=');
        if (eq === 0) fail('ARG names can not be blank');
        return eq < 0 ? { name: w } : { name: w.slice(0, eq), default: w.slice(eq + 1) };
      });
      return { kind, ...base, args };
    }

    case 'EXPOSE': {
      flagsOf({});
      const ports = splitWhitespace(rest);
      if (ports.length === 0) fail('EXPOSE requires at least one argument');
      return { kind, ...base, ports };
    }

    case 'VOLUME': {
      flagsOf({});
      const paths = json() ?? splitWhitespace(rest);
      if (paths.length === 0) fail('VOLUME requires at least one argument');
      if (paths.some((p) => p.trim() === '')) fail('VOLUME specified can not be an empty string');
      return { kind, ...base, paths };
    }

    case 'USER':
      flagsOf({});
      return { kind, ...base, user: one('user[:group]') };
    case 'WORKDIR':
      flagsOf({});
      return { kind, ...base, path: one('a path') };
    case 'STOPSIGNAL':
      flagsOf({});
      return { kind, ...base, signal: one('a signal') };
    case 'MAINTAINER':
      flagsOf({});
      return { kind, ...base, maintainer: one('a name') };

    case 'SHELL': {
      flagsOf({});
      const shell = json();
      if (!shell) fail('SHELL requires the arguments to be in JSON form');
      if (shell!.length === 0) fail('SHELL requires at least one argument');
      return { kind, ...base, shell: shell! };
    }

    case 'CMD':
    case 'ENTRYPOINT': {
      flagsOf({});
      // An empty CMD/ENTRYPOINT clears what the base image set.
      const command: CommandLine = rest === '' ? { form: 'exec', args: [] } : commandLine();
      return { kind, ...base, command };
    }

    case 'HEALTHCHECK':
      return healthcheck(rest, flags, base, fail, flagsOf, ctx);

    case 'ONBUILD': {
      flagsOf({});
      if (rest === '') fail('ONBUILD requires at least one argument');
      const inner = instructionKind(rest, ctx, raw.line);
      if (inner === 'ONBUILD') fail("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
      if (inner === 'FROM' || inner === 'MAINTAINER') fail(`${inner} isn't allowed as an ONBUILD trigger`);
      const trigger = buildInstruction({ ...raw, text: rest }, ctx);
      // The stored trigger must re-parse to the same thing, so heredoc bodies travel with it.
      const bodies = raw.heredocs.map((h) => `\n${h.content}${h.name}`).join('');
      return { kind, ...base, expression: rest + bodies, trigger };
    }
  }
}

/**
 * ENV and LABEL: `key=value ...` (quotes kept for the expander) or the legacy `key value` where the
 * value is the rest of the line. Which one is decided like BuildKit: does the first word hold `=`?
 */
function nameValues(rest: string, kind: 'ENV' | 'LABEL', escape: string, fail: (detail: string) => never): { pairs: KeyValue[]; legacy: boolean } {
  const words = splitQuotedWords(rest, escape);
  if (words.length === 0) fail(`${kind} requires at least one argument`);
  if (!words[0]!.includes('=')) {
    const m = /^(\S+)[\t\v\f\r ]+([\s\S]+)$/.exec(rest);
    if (!m) fail(`${kind} must have two arguments`);
    return { pairs: [{ key: m![1]!, value: m![2]! }], legacy: true };
  }
  const pairs = words.map((w) => {
    const eq = w.indexOf('=');
    if (eq < 0) fail(`Syntax error - can't find = in "${w}". Must be of the form: name=value`);
    if (eq === 0) fail(`${kind} names can not be blank`);
    return { key: w.slice(0, eq), value: w.slice(eq + 1) };
  });
  return { pairs, legacy: false };
}

type Fail = (detail: string) => never;

function healthcheck(
  rest: string,
  flags: string[],
  base: { line: number; endLine: number; original: string },
  fail: Fail,
  flagsOf: (spec: FlagSpec) => ParsedFlags,
  _ctx: BuildContext,
): Instruction {
  const m = /^(\S+)\s*([\s\S]*)$/.exec(rest);
  if (!m) return fail('HEALTHCHECK requires at least one argument');
  const type = m[1]!.toUpperCase();
  const args = m[2]!;
  if (type === 'NONE') {
    if (args !== '') fail('HEALTHCHECK NONE takes no arguments');
    if (flags.length > 0) fail('HEALTHCHECK NONE takes no flags');
    return { kind: 'HEALTHCHECK', ...base, test: { type: 'NONE' } };
  }
  const f = flagsOf({ interval: 'string', timeout: 'string', 'start-period': 'string', 'start-interval': 'string', retries: 'string' });
  if (type !== 'CMD') fail(`Unknown type "${m[1]}" in HEALTHCHECK (try CMD)`);
  if (args === '') fail('Missing command after HEALTHCHECK CMD');
  let command: CommandLine;
  try {
    const json = parseJsonArray(args);
    command = json ? { form: 'exec', args: json } : { form: 'shell', command: args };
  } catch (err) {
    if (err instanceof NotStringArrayError) return fail(err.message);
    throw err;
  }
  if (command.form === 'exec' && command.args.length === 0) fail('Missing command after HEALTHCHECK CMD');
  const out: Instruction = { kind: 'HEALTHCHECK', ...base, test: { type: 'CMD', command } };
  const durations = [
    ['interval', 'intervalNs'],
    ['timeout', 'timeoutNs'],
    ['start-period', 'startPeriodNs'],
    ['start-interval', 'startIntervalNs'],
  ] as const;
  for (const [flag, field] of durations) {
    const text = f.strings.get(flag);
    if (text === undefined || text === '') continue;
    let ns: number;
    try {
      ns = parseDurationNs(text);
    } catch {
      return fail(`--${flag}: invalid duration "${text}" (use Go syntax such as 30s, 1m30s, 500ms)`);
    }
    if (ns < 0) fail(`--${flag} cannot be negative (${text})`);
    // Docker rejects sub-millisecond non-zero intervals; 0 means "inherit the default".
    if (ns !== 0 && ns < 1e6) fail(`--${flag} cannot be less than ${formatDuration(1e6)} (${text})`);
    out[field] = ns;
  }
  const retries = f.strings.get('retries');
  if (retries !== undefined && retries !== '') {
    if (!/^[+-]?\d+$/.test(retries)) fail(`--retries must be an integer, got "${retries}"`);
    const n = Number(retries);
    if (n < 0) fail(`--retries cannot be negative (${n})`);
    if (n > 2 ** 31 - 1) fail(`--retries is too large (${n})`);
    out.retries = n;
  }
  return out;
}
