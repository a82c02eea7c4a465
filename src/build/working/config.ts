import type { ContainerConfig } from '../../oci/config.js';
import { InvalidInputError } from '../../util/errors.js';
import { setEnv } from '../executor/metadata.js';
import type { WorkingContainer } from './records.js';

/** `buildah config` flags, as given (repeatable ones as lists). */
export interface ConfigEdits {
  /** `KEY=VALUE` sets; `KEY-` removes. */
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
export function applyConfig(c: WorkingContainer, e: ConfigEdits): WorkingContainer {
  const config: ContainerConfig = structuredClone(c.state.config);
  const annotations = { ...c.annotations };
  for (const text of e.env ?? []) {
    const p = pair('--env', text);
    if (p.value === undefined) config.Env = (config.Env ?? []).filter((kv) => kv.split('=', 1)[0] !== p.key);
    else config.Env = setEnv(config.Env ?? [], p.key, p.value);
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
