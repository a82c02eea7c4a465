import { constants } from 'node:os';

/**
 * Linux signal names a STOPSIGNAL may give (as moby's signal table: with or without `SIG`, any
 * case, RTMIN+n and RTMAX-n), or a number from 1 to 64.
 */
const NAMES = new Set(
  Object.keys(constants.signals)
    .filter((n) => n.startsWith('SIG'))
    .map((n) => n.slice(3)),
);

/** The problem with a STOPSIGNAL value, or undefined when it names a signal. */
export function checkSignal(text: string): string | undefined {
  if (/^\d+$/.test(text)) {
    const n = Number(text);
    return n >= 1 && n <= 64 ? undefined : `invalid signal "${text}": a signal number is 1 to 64`;
  }
  const name = text.toUpperCase().replace(/^SIG/, '');
  if (NAMES.has(name)) return undefined;
  const rt = /^RT(MIN|MAX)(?:([+-])(\d+))?$/.exec(name);
  if (rt) {
    const off = rt[3] === undefined ? 0 : Number(rt[3]);
    const ok = rt[3] === undefined || (rt[1] === 'MIN' ? rt[2] === '+' && off <= 15 : rt[2] === '-' && off <= 14);
    if (ok) return undefined;
  }
  return `invalid signal "${text}" (want a name such as SIGTERM or SIGQUIT, or a number)`;
}
