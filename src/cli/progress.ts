import type { SingleBar } from 'cli-progress';
import { createRequire } from 'node:module';
import type { ProgressEvent, ProgressListener } from '../copy/progress.js';

export type ProgressMode = 'auto' | 'tty' | 'text' | 'json' | 'none';

export interface ProgressRenderer {
  listener: ProgressListener;
  /** Stops bars and flushes; call once when the operation ends, successfully or not. */
  done(): void;
}

function short(digest: string): string {
  return digest.slice(0, 19);
}

function humanBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

/**
 * Progress for people and for machines: bars per blob on a terminal (as skopeo and podman show),
 * skopeo's plain lines otherwise (`Copying blob …`, `Writing manifest to image destination`), and
 * JSON lines (one object per event, throttled) with `--progress json`, for CI logs that parse them.
 */
export function createProgress(mode: ProgressMode, out: NodeJS.WriteStream = process.stderr): ProgressRenderer {
  const effective = mode === 'auto' ? (out.isTTY ? 'tty' : 'text') : mode;
  if (effective === 'none') return { listener: () => {}, done: () => {} };
  if (effective === 'text') {
    out.write('Getting image source signatures\n');
    return {
      listener: (ev: ProgressEvent) => {
        if (ev.type === 'blob') {
          // skopeo says "config" for the image config, "blob" for layers.
          const what = ev.phase === 'reused' || ev.phase === 'start' ? (ev.mediaType?.includes('config') ? 'config' : 'blob') : 'blob';
          if (ev.phase === 'reused') out.write(`Copying ${what} ${short(ev.digest)} skipped: already exists\n`);
          else if (ev.phase === 'start') out.write(`Copying ${what} ${short(ev.digest)}\n`);
          else if (ev.phase === 'retry') out.write(`Retrying blob ${short(ev.digest)} (attempt ${ev.attempt} failed: ${ev.error})\n`);
        } else if (ev.type === 'manifest' && ev.top) {
          out.write('Writing manifest to image destination\n');
        }
      },
      done: () => {},
    };
  }
  if (effective === 'json') {
    const lastProgress = new Map<string, number>();
    return {
      listener: (ev: ProgressEvent) => {
        if (ev.type === 'blob' && ev.phase === 'progress') {
          const now = Date.now();
          if (now - (lastProgress.get(ev.digest) ?? 0) < 1000) return;
          lastProgress.set(ev.digest, now);
        }
        out.write(JSON.stringify({ time: new Date().toISOString(), ...ev }) + '\n');
      },
      done: () => {},
    };
  }
  // The bar library loads only for a terminal: a copy in CI or a build Pod (JSON lines) skips it.
  const { MultiBar, Presets } = createRequire(import.meta.url)('cli-progress') as typeof import('cli-progress');
  const multi = new MultiBar(
    {
      stream: out,
      format: '{label} [{bar}] {percentage}% | {done}/{total_h} | {speed}',
      hideCursor: true,
      clearOnComplete: false,
      autopadding: true,
      fps: 8,
    },
    Presets.shades_classic,
  );
  const bars = new Map<string, { bar: SingleBar; started: number }>();
  const payload = (digest: string, bytes: number, size: number, started: number) => ({
    label: `Copying blob ${short(digest)}`,
    done: humanBytes(bytes),
    total_h: humanBytes(size),
    speed: `${humanBytes((bytes / Math.max(1, Date.now() - started)) * 1000)}/s`,
  });
  return {
    listener: (ev: ProgressEvent) => {
      if (ev.type === 'blob') {
        if (ev.phase === 'reused') {
          multi.log(`Copying blob ${short(ev.digest)} skipped: already exists\n`);
        } else if (ev.phase === 'start') {
          const started = Date.now();
          bars.set(ev.digest, { bar: multi.create(Math.max(1, ev.size), 0, payload(ev.digest, 0, ev.size, started)), started });
        } else if (ev.phase === 'progress' || ev.phase === 'done') {
          const b = bars.get(ev.digest);
          b?.bar.update(ev.bytes, payload(ev.digest, ev.bytes, ev.size, b.started));
        } else if (ev.phase === 'retry') {
          multi.log(`Copying blob ${short(ev.digest)}: attempt ${ev.attempt} failed (${ev.error}); retrying\n`);
        }
      } else if (ev.type === 'manifest' && ev.top) {
        multi.log(`Writing manifest ${short(ev.digest)} to image destination\n`);
      }
    },
    done: () => multi.stop(),
  };
}
