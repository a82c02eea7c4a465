/**
 * A minimal ustar/PAX writer for generating fuzz inputs synchronously (fast-check arbitraries
 * cannot await a packing stream). Deliberately lax: it writes whatever it is given, including
 * names, modes and link targets a careful writer would refuse.
 */
export interface RawTarEntry {
  name: string;
  /** ustar typeflag: '0' file, '1' hardlink, '2' symlink, '3' char, '4' block, '5' dir, '6' fifo, '7' contiguous, or anything. */
  type: string;
  content?: Uint8Array;
  linkname?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  /** PAX records written in an `x` header before the entry. */
  pax?: Record<string, string>;
}

function octal(n: number, width: number): string {
  return `${(n >>> 0)
    .toString(8)
    .padStart(width - 1, '0')
    .slice(-(width - 1))}\0`;
}

function header(name: string, type: string, size: number, e: RawTarEntry): Buffer {
  const h = Buffer.alloc(512);
  h.write(name.slice(0, 100), 0, 'utf8');
  h.write(octal(e.mode ?? 0o644, 8), 100, 'latin1');
  h.write(octal(e.uid ?? 0, 8), 108, 'latin1');
  h.write(octal(e.gid ?? 0, 8), 116, 'latin1');
  h.write(octal(size, 12), 124, 'latin1');
  h.write(octal(0, 12), 136, 'latin1');
  h.write('        ', 148, 'latin1');
  h.write(type.slice(0, 1) || '0', 156, 'latin1');
  h.write((e.linkname ?? '').slice(0, 100), 157, 'utf8');
  h.write('ustar\0', 257, 'latin1');
  h.write('00', 263, 'latin1');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(octal(sum, 7), 148, 'latin1');
  return h;
}

function padded(data: Uint8Array): Buffer[] {
  const pad = (512 - (data.length % 512)) % 512;
  return [Buffer.from(data), Buffer.alloc(pad)];
}

function paxBody(records: Record<string, string>): Buffer {
  let out = '';
  for (const [k, v] of Object.entries(records)) {
    const rest = ` ${k}=${v}\n`;
    let len = Buffer.byteLength(rest) + 1;
    while (String(len).length + Buffer.byteLength(rest) !== len) len = String(len).length + Buffer.byteLength(rest);
    out += `${len}${rest}`;
  }
  return Buffer.from(out);
}

export function writeTar(entries: readonly RawTarEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    if (e.pax && Object.keys(e.pax).length > 0) {
      const body = paxBody(e.pax);
      parts.push(header('PaxHeader', 'x', body.length, e), ...padded(body));
    }
    const content = e.type === '0' || e.type === '7' ? (e.content ?? new Uint8Array()) : new Uint8Array();
    parts.push(header(e.name, e.type, content.length, e), ...padded(content));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}
