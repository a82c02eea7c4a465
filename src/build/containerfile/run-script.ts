import { chompHeredoc, parseHeredocMarker } from './heredoc.js';
import type { RunInstruction } from './instructions.js';

/**
 * What a RUN actually executes, with BuildKit's heredoc rules:
 * - exec form: the argv as given;
 * - `RUN <<EOT` alone whose body starts with `#!`: the body becomes an executable file that is run
 *   directly (its interpreter line chooses the program);
 * - `RUN <<EOT` alone otherwise: the body is the shell script;
 * - anything else with heredocs (`RUN python3 <<EOT`, several heredocs): the line and the bodies are
 *   handed to the shell together, which then does the here-document itself.
 */
export type RunScript = { kind: 'exec'; args: string[] } | { kind: 'shell'; script: string } | { kind: 'file'; name: string; content: string };

export function runScript(run: RunInstruction): RunScript {
  if (run.command.form === 'exec') return { kind: 'exec', args: run.command.args };
  const line = run.command.command;
  if (run.heredocs.length === 0) return { kind: 'shell', script: line };
  const first = run.heredocs[0]!;
  if (parseHeredocMarker(line) !== undefined) {
    const content = first.chomp ? chompHeredoc(first.content) : first.content;
    if (content.startsWith('#!')) return { kind: 'file', name: first.name, content };
    return { kind: 'shell', script: content };
  }
  return { kind: 'shell', script: line + run.heredocs.map((h) => `\n${h.content}${h.name}`).join('') };
}
