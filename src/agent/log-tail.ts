/**
 * The last lines of a container's k8s-file log, read from the end of the file only: a running
 * container's tail is refreshed every poll, and its log may be far larger than the 50 lines kept.
 */
import { open } from 'node:fs/promises';
import { parseK8sLog } from '../runtime/logs.js';
import { LOG_TAIL_LINES, logTail } from './status-text.js';

/** Enough for 50 full 16 KiB records plus their headers; longer lines are cut by logTail anyway. */
const WINDOW = 1024 * 1024;

export async function readLogTail(path: string, lines = LOG_TAIL_LINES): Promise<string> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch {
    return '';
  }
  try {
    const size = (await fh.stat()).size;
    const start = Math.max(0, size - WINDOW);
    const buf = Buffer.alloc(size - start);
    await fh.read(buf, 0, buf.length, start);
    let text = buf.toString('utf8');
    // Started mid-record: drop the partial first line.
    if (start > 0) text = text.slice(text.indexOf('\n') + 1);
    const out: string[] = [];
    const partial: Record<string, string> = { stdout: '', stderr: '' };
    for (const r of parseK8sLog(text)) {
      if (r.tag === 'P') partial[r.stream] += r.text;
      else {
        out.push(partial[r.stream] + r.text);
        partial[r.stream] = '';
      }
    }
    // A last line without a newline (a partial record no full one follows) is output too.
    for (const rest of Object.values(partial)) if (rest !== '') out.push(rest);
    return logTail(out.slice(-lines));
  } finally {
    await fh.close();
  }
}
