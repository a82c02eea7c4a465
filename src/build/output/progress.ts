import type { BuildReporter } from '../executor/types.js';
import type { BuiltLayer } from '../executor/state.js';

export function humanSize(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

function short(layer: BuiltLayer): string {
  return layer.diffID.replace(/^sha256:/, '').slice(0, 12);
}

/**
 * Step-by-step output in the shape of `buildah bud`: `[1/2] STEP 3/7: RUN make`, the RUN's own
 * output, then `--> Using cache <id>` or `--> <id> (size, time)`. Written to `out` (stderr by
 * default, so stdout carries only the image digest).
 */
export function textReporter(out: NodeJS.WritableStream = process.stderr): BuildReporter {
  let endedWithNewline = true;
  const write = (s: string): void => {
    if (!endedWithNewline) s = `\n${s}`;
    out.write(s);
    endedWithNewline = s.endsWith('\n');
  };
  return {
    step: (s) => {
      const prefix = s.stages > 1 ? `[${s.stage}/${s.stages}] ` : '';
      write(`${prefix}STEP ${s.step}/${s.steps}: ${s.text}\n`);
    },
    cached: (layer) => write(`--> Using cache ${layer ? short(layer) : '(no changes)'}\n`),
    layer: (layer, ms) =>
      write(layer ? `--> ${short(layer)} (${humanSize(layer.size)}, ${(ms / 1000).toFixed(1)}s)\n` : `--> no changes (${(ms / 1000).toFixed(1)}s)\n`),
    output: (chunk) => {
      out.write(chunk);
      endedWithNewline = chunk.length === 0 ? endedWithNewline : chunk[chunk.length - 1] === 0x0a;
    },
    warn: (message) => write(`WARNING: ${message}\n`),
  };
}
