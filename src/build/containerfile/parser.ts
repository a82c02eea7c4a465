import { buildInstruction, instructionKind, type BuildContext, type RawLine } from './builders.js';
import { parseDirectives, type Directives } from './directives.js';
import { ContainerfileError } from './errors.js';
import { heredocMarkers, isTerminator, type Heredoc } from './heredoc.js';
import type { Instruction } from './instructions.js';
import { parseJsonArray, splitCommand } from './words.js';

/**
 * The Containerfile parser: physical lines → logical lines (continuations, comments, heredoc bodies)
 * → typed instructions, following BuildKit's frontend/dockerfile/parser.
 */
export interface Containerfile {
  file: string;
  directives: Directives;
  instructions: Instruction[];
}

/** Containerfiles above 1 MiB are refused before parsing (real ones are a few KiB; heredocs included). */
export const MAX_CONTAINERFILE_BYTES = 1024 * 1024;

export interface ParseOptions {
  /** Name used in error messages; `Containerfile` by default. */
  file?: string;
  /**
   * Further files whose instructions follow this one's (`-f A -f B`, as buildah joins them). Each
   * instruction then records its own file, so messages name the right file and line.
   */
  more?: readonly { text: string; file: string }[];
}

/**
 * Parses a whole Containerfile and checks its shape: at least one FROM, and nothing but ARG
 * (and directives/comments) before the first FROM.
 */
export function parseContainerfile(text: string, opts: ParseOptions = {}): Containerfile {
  const file = opts.file ?? 'Containerfile';
  const size = Buffer.byteLength(text);
  if (size > MAX_CONTAINERFILE_BYTES)
    throw new ContainerfileError({ file }, `${size} bytes exceed the ${MAX_CONTAINERFILE_BYTES}-byte limit for a Containerfile`);
  const lines = splitLines(text);
  const directives = parseDirectives(lines, file);
  const joined = (opts.more ?? []).length > 0;
  const instructions = parseLines(lines, { file, escape: directives.escape }, joined);
  // The first file's directives (escape) hold for the others, as when the files are concatenated.
  for (const m of opts.more ?? []) instructions.push(...parseLines(splitLines(m.text), { file: m.file, escape: directives.escape }, true));
  if (instructions.length === 0) throw new ContainerfileError({ file }, 'file with no instructions');
  for (const inst of instructions) {
    if (inst.kind === 'FROM') break;
    if (inst.kind !== 'ARG') {
      throw new ContainerfileError(
        { file: inst.file ?? file, line: inst.line, instruction: inst.kind },
        'no build stage in current context: only ARG may come before the first FROM',
      );
    }
  }
  if (!instructions.some((i) => i.kind === 'FROM')) {
    throw new ContainerfileError({ file }, 'no FROM instruction: a Containerfile needs at least one build stage');
  }
  return { file, directives, instructions };
}

/**
 * Parses instructions without the whole-file checks (for ONBUILD triggers taken from a base image's
 * config, which are fragments).
 */
export function parseInstructions(text: string, ctx: BuildContext): Instruction[] {
  return parseLines(splitLines(text), ctx);
}

/** Lines as BuildKit's scanner yields them: split on \n, a trailing \r dropped. */
function splitLines(text: string): string[] {
  const lines = text.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

const LEADING_SPACE = /^\s+/u;

/**
 * Strips a trailing escape character (plus blanks after it): BuildKit's `^(.*?)\\[ \t]*$`.
 * Returns the text and whether the logical line continues.
 */
function trimContinuation(text: string, escape: string): [string, boolean] {
  const trimmed = text.replace(/[ \t]+$/, '');
  if (trimmed.endsWith(escape)) return [trimmed.slice(0, -escape.length), true];
  return [text, false];
}

function isCommentOrBlank(text: string): 'comment' | 'blank' | undefined {
  const t = text.replace(LEADING_SPACE, '');
  if (t === '') return 'blank';
  return t.startsWith('#') ? 'comment' : undefined;
}

function parseLines(lines: readonly string[], ctx: BuildContext, recordFile = false): Instruction[] {
  const out: Instruction[] = [];
  let i = 0;
  while (i < lines.length) {
    const start = i + 1;
    const first = lines[i++]!;
    // Top-level comments (directives included) and blank lines are skipped; a comment never continues.
    if (isCommentOrBlank(first)) continue;
    let [text, more] = trimContinuation(first.replace(LEADING_SPACE, ''), ctx.escape);
    let end = start;
    // Inside a continuation, comment lines and blank lines are dropped (BuildKit warns about the
    // blank ones; they will become an error some day) and do not end the instruction.
    while (more && i < lines.length) {
      const next = lines[i++]!;
      end = i;
      if (isCommentOrBlank(next)) continue;
      const [part, again] = trimContinuation(next, ctx.escape);
      text += part;
      more = again;
    }
    if (text.trim() === '') continue;

    const heredocs: Heredoc[] = [];
    if (mayHaveHeredocs(text, ctx, start)) {
      for (const marker of heredocMarkers(text)) {
        let content = '';
        let terminated = false;
        while (i < lines.length) {
          const body = lines[i++]!;
          end = i;
          if (isTerminator(body, marker)) {
            terminated = true;
            break;
          }
          content += body + '\n';
        }
        if (!terminated) {
          throw new ContainerfileError(
            { file: ctx.file, line: start, instruction: splitCommand(text).command.toUpperCase() },
            `unterminated heredoc <<${marker.name} (no line "${marker.name}" before the end of the file)`,
          );
        }
        heredocs.push({ ...marker, content });
      }
    }
    const raw: RawLine = { text, line: start, endLine: end, heredocs };
    const inst = buildInstruction(raw, ctx);
    out.push(recordFile ? { ...inst, file: ctx.file } : inst);
  }
  return out;
}

/** Only RUN, COPY and ADD (directly or under ONBUILD), in shell form, take heredocs. */
function mayHaveHeredocs(text: string, ctx: BuildContext, line: number): boolean {
  if (!text.includes('<<')) return false;
  let { command, rest } = splitCommand(text);
  let kind = instructionKind(command, ctx, line);
  if (kind === 'ONBUILD' && rest !== '') {
    ({ command, rest } = splitCommand(rest));
    kind = instructionKind(command, ctx, line);
  }
  if (kind !== 'RUN' && kind !== 'COPY' && kind !== 'ADD') return false;
  try {
    return parseJsonArray(rest) === undefined;
  } catch {
    return false;
  }
}
