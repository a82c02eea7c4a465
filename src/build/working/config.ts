import type { ContainerConfig } from '../../oci/config.js';
import { InvalidInputError } from '../../util/errors.js';
import type { WorkingContainer } from './records.js';

/** `buildah config` flags, as given (repeatable ones as lists). */
export interface ConfigEdits {
  /** `KEY=VALUE` sets (`$NAME` in VALUE expanded from the container's Env); `KEY` takes the caller's value; `KEY-` removes. */
  env?: readonly string[];
  /** `80`, `80/udp`; `80-` removes. */
  port?: readonly string[];
  /** A JSON array, or words split as a shell would (buildah's shellwords); `""` clears. */
  cmd?: string;
  /** A JSON array as is; other text runs as `/bin/sh -c TEXT`; `""` clears. */
  entrypoint?: string;
  workingdir?: string;
  user?: string;
  /** `KEY=VALUE` sets; `KEY-` removes. */
  label?: readonly string[];
  annotation?: readonly string[];
  author?: string;
  createdBy?: string;
}

function pair(flag: string, text: string): { key: string; value?: string } {
  if (text.endsWith('-') && !text.includes('=')) return { key: text.slice(0, -1) };
  const eq = text.indexOf('=');
  if (eq <= 0) throw new InvalidInputError(`${flag} ${text}: want KEY=VALUE (or KEY- to remove)`);
  return { key: text.slice(0, eq), value: text.slice(eq + 1) };
}

/** Words of a command line as a POSIX shell splits them (quotes and backslashes; no expansion). */
export function shellWords(text: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quote === "'") {
      if (ch === "'") quote = undefined;
      else cur += ch;
    } else if (quote === '"') {
      if (ch === '"') quote = undefined;
      else if (ch === '\\' && i + 1 < text.length && '"\\$`'.includes(text[i + 1]!)) cur += text[++i];
      else cur += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      inWord = true;
    } else if (ch === '\\' && i + 1 < text.length) {
      cur += text[++i];
      inWord = true;
    } else if (/\s/.test(ch)) {
      if (inWord) out.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += ch;
      inWord = true;
    }
  }
  if (quote) throw new InvalidInputError(`unterminated ${quote} quote in ${JSON.stringify(text)}`);
  if (inWord) out.push(cur);
  return out;
}

/** Go's os.Expand name rules: `${NAME}`, `$NAME` (letters, digits, `_`), or one special character. */
function shellName(s: string): { name: string; width: number } {
  const special = (c: string | undefined): boolean => c !== undefined && /^[*#$@!?\-0-9]$/.test(c);
  if (s[0] === '{') {
    if (s.length > 2 && special(s[1]) && s[2] === '}') return { name: s[1]!, width: 3 };
    const close = s.indexOf('}');
    if (close === 1) return { name: '', width: 2 };
    if (close < 0) return { name: '', width: 1 };
    return { name: s.slice(1, close), width: close + 1 };
  }
  if (special(s[0])) return { name: s[0]!, width: 1 };
  let i = 0;
  while (i < s.length && /[A-Za-z0-9_]/.test(s[i]!)) i++;
  return { name: s.slice(0, i), width: i };
}

/**
 * `$NAME` and `${NAME}` in a `config --env` value, as buildah 1.28 expands them (Go's os.Expand
 * over the container's Env): a name the container does not set stays as the bare name.
 */
export function expandEnvValue(text: string, env: readonly string[]): string {
  const lookup = (name: string): string => {
    const hit = env.find((kv) => kv.slice(0, kv.indexOf('=')) === name && kv.includes('='));
    return hit === undefined ? name : hit.slice(hit.indexOf('=') + 1);
  };
  let out = '';
  let i = 0;
  for (let j = 0; j < text.length; j++) {
    if (text[j] === '$' && j + 1 < text.length) {
      out += text.slice(i, j);
      const { name, width } = shellName(text.slice(j + 1));
      if (name === '' && width === 0) out += '$';
      else if (name !== '') out += lookup(name);
      j += width;
      i = j + 1;
    }
  }
  return out + text.slice(i);
}

function jsonArray(text: string): string[] | undefined {
  if (!text.trimStart().startsWith('[')) return undefined;
  try {
    const v = JSON.parse(text) as unknown;
    return Array.isArray(v) && v.every((s) => typeof s === 'string') ? (v as string[]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The container with `buildah config`'s edits applied, as buildah 1.28 applies them: a new
 * ENTRYPOINT keeps the CMD, ports without a protocol are stored as written.
 */
export function applyConfig(c: WorkingContainer, e: ConfigEdits, hostEnv: NodeJS.ProcessEnv = process.env): WorkingContainer {
  const config: ContainerConfig = structuredClone(c.state.config);
  const annotations = { ...c.annotations };
  for (const text of e.env ?? []) {
    // `KEY` alone takes this process's value, as buildah's.
    const p = /^[^=]+$/.test(text) && !text.endsWith('-') ? { key: text, value: hostEnv[text] ?? '' } : pair('--env', text);
    const others = (config.Env ?? []).filter((kv) => kv.split('=', 1)[0] !== p.key);
    // buildah's SetEnv drops the old entry and appends: a changed PATH moves to the end.
    config.Env = p.value === undefined ? others : [...others, `${p.key}=${expandEnvValue(p.value, config.Env ?? [])}`];
  }
  for (const text of e.port ?? []) {
    if (text.endsWith('-')) {
      const key = text.slice(0, -1);
      if (config.ExposedPorts) delete config.ExposedPorts[key];
    } else {
      if (!/^\d+(-\d+)?(\/(tcp|udp|sctp))?$/.test(text)) throw new InvalidInputError(`--port ${text}: want PORT[/tcp|udp|sctp]`);
      config.ExposedPorts = { ...(config.ExposedPorts ?? {}), [text]: {} };
    }
  }
  if (e.cmd !== undefined) {
    if (e.cmd === '') delete config.Cmd;
    else config.Cmd = jsonArray(e.cmd) ?? shellWords(e.cmd);
  }
  if (e.entrypoint !== undefined) {
    if (e.entrypoint === '') delete config.Entrypoint;
    else config.Entrypoint = jsonArray(e.entrypoint) ?? ['/bin/sh', '-c', e.entrypoint];
  }
  if (e.workingdir !== undefined) config.WorkingDir = e.workingdir;
  if (e.user !== undefined) config.User = e.user;
  for (const text of e.label ?? []) {
    const p = pair('--label', text);
    const labels = { ...(config.Labels ?? {}) };
    if (p.value === undefined) delete labels[p.key];
    else labels[p.key] = p.value;
    config.Labels = labels;
  }
  for (const text of e.annotation ?? []) {
    const p = pair('--annotation', text);
    if (p.value === undefined) delete annotations[p.key];
    else annotations[p.key] = p.value;
  }
  const state = { ...c.state, config, cmdSet: c.state.cmdSet || e.cmd !== undefined };
  if (e.author !== undefined) state.author = e.author;
  const out: WorkingContainer = { ...c, state, annotations };
  if (e.createdBy !== undefined) out.createdBy = e.createdBy;
  return out;
}
