import { posix } from 'node:path';
import type { CommandLine, Instruction } from '../containerfile/index.js';
import type { ContainerConfig } from '../../oci/config.js';
import type { StageState } from './state.js';

/** The shell of shell-form commands when no SHELL was given (Linux). */
export const DEFAULT_SHELL: readonly string[] = ['/bin/sh', '-c'];

export function shellOf(config: ContainerConfig): string[] {
  return config.Shell && config.Shell.length > 0 ? [...config.Shell] : [...DEFAULT_SHELL];
}

/** Exec form as given; shell form wrapped in the stage's shell (`/bin/sh -c "<text>"`). */
export function argvOf(cmd: CommandLine, config: ContainerConfig): string[] {
  return cmd.form === 'exec' ? [...cmd.args] : [...shellOf(config), cmd.command];
}

/** `KEY=V` list with one key replaced in place (or appended), as Docker updates Env. */
export function setEnv(env: readonly string[] | undefined, key: string, value: string): string[] {
  const out = [...(env ?? [])];
  const i = out.findIndex((e) => (e.includes('=') ? e.slice(0, e.indexOf('=')) : e) === key);
  if (i >= 0) out[i] = `${key}=${value}`;
  else out.push(`${key}=${value}`);
  return out;
}

/** `80`, `80/udp`, `8000-8002/tcp` → the ExposedPorts keys (ranges expanded, tcp by default). */
export function portKeys(spec: string): string[] {
  const [range, proto = 'tcp'] = spec.split('/') as [string, string | undefined];
  const [lo, hi] = range.includes('-') ? (range.split('-').map(Number) as [number, number]) : [Number(range), Number(range)];
  const keys: string[] = [];
  for (let p = lo; p <= hi; p++) keys.push(`${p}/${proto.toLowerCase()}`);
  return keys;
}

/** WORKDIR: relative to the current one, cleaned, always absolute. */
export function resolveWorkdir(current: string | undefined, path: string): string {
  const joined = path.startsWith('/') ? path : posix.join(current || '/', path);
  const clean = posix.normalize(joined);
  return clean.length > 1 ? clean.replace(/\/+$/, '') : clean;
}

/**
 * Applies an instruction that only changes the image config (everything but RUN, COPY, ADD and the
 * WORKDIR directory itself) with Docker's semantics. Returns the new state; ARG changes nothing here
 * (the evaluator has already applied it to the scope).
 */
export function applyMetadata(state: StageState, inst: Instruction): StageState {
  const config: ContainerConfig = structuredClone(state.config);
  let { cmdSet, author } = state;
  switch (inst.kind) {
    case 'ENV':
      for (const kv of inst.pairs) config.Env = setEnv(config.Env, kv.key, kv.value);
      break;
    case 'LABEL':
      config.Labels = { ...(config.Labels ?? {}) };
      for (const kv of inst.pairs) config.Labels[kv.key] = kv.value;
      break;
    case 'EXPOSE':
      config.ExposedPorts = { ...(config.ExposedPorts ?? {}) };
      for (const p of inst.ports) for (const k of portKeys(p)) config.ExposedPorts[k] = {};
      break;
    case 'VOLUME':
      config.Volumes = { ...(config.Volumes ?? {}) };
      for (const p of inst.paths) config.Volumes[p] = {};
      break;
    case 'USER':
      config.User = inst.user;
      break;
    case 'WORKDIR':
      config.WorkingDir = resolveWorkdir(config.WorkingDir, inst.path);
      break;
    case 'SHELL':
      config.Shell = [...inst.shell];
      break;
    case 'ENTRYPOINT':
      config.Entrypoint = argvOf(inst.command, config);
      // Docker: an ENTRYPOINT clears a CMD inherited from the base image, not one this stage set.
      if (!cmdSet) config.Cmd = null;
      break;
    case 'CMD':
      config.Cmd = argvOf(inst.command, config);
      cmdSet = true;
      break;
    case 'HEALTHCHECK': {
      if (inst.test.type === 'NONE') {
        config.Healthcheck = { Test: ['NONE'] };
        break;
      }
      const cmd = inst.test.command;
      const hc: NonNullable<ContainerConfig['Healthcheck']> = {
        Test: cmd.form === 'exec' ? ['CMD', ...cmd.args] : ['CMD-SHELL', cmd.command],
      };
      if (inst.intervalNs) hc.Interval = inst.intervalNs;
      if (inst.timeoutNs) hc.Timeout = inst.timeoutNs;
      if (inst.startPeriodNs) hc.StartPeriod = inst.startPeriodNs;
      if (inst.startIntervalNs) hc.StartInterval = inst.startIntervalNs;
      if (inst.retries) hc.Retries = inst.retries;
      config.Healthcheck = hc;
      break;
    }
    case 'STOPSIGNAL':
      config.StopSignal = inst.signal;
      break;
    case 'ONBUILD':
      config.OnBuild = [...(config.OnBuild ?? []), inst.expression];
      break;
    case 'MAINTAINER':
      author = inst.maintainer;
      break;
    default:
      break;
  }
  const out: StageState = { ...state, config, cmdSet };
  if (author !== undefined) out.author = author;
  return out;
}

/** The history line of a step, as buildah writes it (`/bin/sh -c #(nop) ENV A=1`). */
export function historyText(inst: Instruction, config: ContainerConfig): string {
  if (inst.kind === 'RUN') {
    if (inst.command.form === 'exec') return `RUN ${JSON.stringify(inst.command.args)}`;
    return `${shellOf(config).join(' ')} ${inst.command.command}`;
  }
  return `/bin/sh -c #(nop) ${inst.original}`;
}
