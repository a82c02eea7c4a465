import type { FoundPackage } from './found.js';

/**
 * Go build information embedded in binaries (Go's debug/buildinfo): a 32-byte header, 16-byte
 * aligned in the binary's data, starting with the magic `\xff Go buildinf:`, then the pointer size
 * and a flags byte. Since Go 1.18 (flag bit 0x2) the Go version and the module information follow
 * the header inline, each as a uvarint length and the bytes. Older binaries hold pointers instead,
 * which need the executable's section table to resolve: those are reported as unsupported, never
 * guessed. The module information is framed by two 16-byte sentinels and reads, line by line,
 * `path <main package>`, `mod <path> <version> <sum>`, `dep …`, `=> <replacement>` and `build k=v`.
 */
const MAGIC = Buffer.from('\xff Go buildinf:', 'latin1');
const ALIGN = 16;
const HEADER = 32;
const FLAG_INLINE = 0x2;
/** The version and modinfo strings of even the largest binaries are far below this. */
const MAX_INFO = 4 * 1024 * 1024;

/** Executable formats Go writes: ELF, PE, Mach-O (both byte orders, 32/64), XCOFF is not looked at. */
function isExecutableHead(head: Buffer): boolean {
  if (head.length < 4) return false;
  if (head[0] === 0x7f && head[1] === 0x45 && head[2] === 0x4c && head[3] === 0x46) return true;
  if (head[0] === 0x4d && head[1] === 0x5a) return true;
  const m = head.readUInt32BE(0);
  return m === 0xfeedface || m === 0xfeedfacf || m === 0xcefaedfe || m === 0xcffaedfe;
}

export interface GoBuildInfo {
  goVersion: string;
  path?: string;
  main?: GoModule;
  deps: GoModule[];
  settings: Record<string, string>;
}

export interface GoModule {
  path: string;
  version: string;
  sum?: string;
  replace?: GoModule;
}

type Decoded = { kind: 'ok'; goVersion: string; modinfo: string } | { kind: 'need-more' } | { kind: 'invalid' } | { kind: 'old-format' };

function uvarint(buf: Buffer, at: number): { value: number; next: number } | undefined {
  let value = 0;
  let shift = 0;
  for (let i = at; i < buf.length && i < at + 10; i++) {
    const b = buf[i]!;
    value += (b & 0x7f) * 2 ** shift;
    if (b < 0x80) return { value, next: i + 1 };
    shift += 7;
  }
  return undefined;
}

/** Decodes the blob starting at the magic; `need-more` until enough bytes have arrived. */
function decode(blob: Buffer, ended: boolean): Decoded {
  if (blob.length < HEADER) return ended ? { kind: 'invalid' } : { kind: 'need-more' };
  const ptrSize = blob[14]!;
  const flags = blob[15]!;
  if ((flags & FLAG_INLINE) === 0) return ptrSize === 4 || ptrSize === 8 ? { kind: 'old-format' } : { kind: 'invalid' };
  const strings: string[] = [];
  let at = HEADER;
  for (let i = 0; i < 2; i++) {
    const v = uvarint(blob, at);
    if (!v) return blob.length - at >= 10 || ended ? { kind: 'invalid' } : { kind: 'need-more' };
    if (v.value > MAX_INFO) return { kind: 'invalid' };
    if (v.next + v.value > blob.length) return ended ? { kind: 'invalid' } : { kind: 'need-more' };
    strings.push(blob.subarray(v.next, v.next + v.value).toString('utf8'));
    at = v.next + v.value;
  }
  const [goVersion, framed] = strings as [string, string];
  if (!/^(go\d|devel)/.test(goVersion)) return { kind: 'invalid' };
  // Strip the sentinels cmd/go wraps the module information in (debug/buildinfo does the same check).
  const modinfo = framed.length >= 33 && framed[framed.length - 17] === '\n' ? framed.slice(16, -16) : '';
  return { kind: 'ok', goVersion, modinfo };
}

/**
 * Scans a file's bytes as they stream past for the build-info blob, holding only a magic-sized
 * tail between chunks and, once the magic is found, the blob itself (a few KiB). Feed every chunk
 * with `push`, then call `finish`.
 */
export class GoBuildInfoScanner {
  #offset = 0;
  #tail = Buffer.alloc(0);
  #head = Buffer.alloc(0);
  #blob: Buffer[] | undefined;
  #blobLength = 0;
  #state: 'sniff' | 'search' | 'collect' | 'done' = 'sniff';
  #result: { goVersion: string; modinfo: string } | undefined;
  #oldFormat = false;

  /** True once scanning cannot learn more (not an executable, or found). */
  get done(): boolean {
    return this.#state === 'done';
  }

  get oldFormat(): boolean {
    return this.#oldFormat;
  }

  push(chunk: Buffer): void {
    if (this.#state === 'done') return;
    if (this.#state === 'sniff') {
      this.#head = Buffer.concat([this.#head, chunk.subarray(0, 4)]);
      if (this.#head.length < 4 && chunk.length < 4) {
        this.#offset += chunk.length;
        return;
      }
      if (!isExecutableHead(this.#head)) {
        this.#state = 'done';
        return;
      }
      this.#state = 'search';
      // The head bytes are part of the data searched below; rewind to the chunk's own start.
    }
    if (this.#state === 'collect') {
      this.#collect(chunk);
      return;
    }
    this.#search(chunk);
  }

  #search(chunk: Buffer): void {
    const data = this.#tail.length > 0 ? Buffer.concat([this.#tail, chunk]) : chunk;
    const base = this.#offset - this.#tail.length;
    let from = 0;
    for (;;) {
      const i = data.indexOf(MAGIC, from);
      if (i < 0) break;
      if ((base + i) % ALIGN === 0) {
        this.#state = 'collect';
        this.#blob = [];
        this.#blobLength = 0;
        this.#offset += chunk.length;
        this.#collect(data.subarray(i), true);
        return;
      }
      from = i + 1;
    }
    this.#offset += chunk.length;
    this.#tail = Buffer.from(data.subarray(Math.max(0, data.length - (MAGIC.length - 1))));
  }

  #collect(chunk: Buffer, counted = false): void {
    if (!counted) this.#offset += chunk.length;
    this.#blob!.push(chunk);
    this.#blobLength += chunk.length;
    this.#tryDecode(false);
  }

  #tryDecode(ended: boolean): void {
    const blob = Buffer.concat(this.#blob!);
    this.#blob = [blob];
    const d = decode(blob, ended || this.#blobLength > MAX_INFO * 2 + HEADER + 20);
    if (d.kind === 'need-more') return;
    if (d.kind === 'ok') {
      this.#result = { goVersion: d.goVersion, modinfo: d.modinfo };
      this.#state = 'done';
      this.#blob = undefined;
      return;
    }
    if (d.kind === 'old-format') {
      this.#oldFormat = true;
      this.#state = 'done';
      this.#blob = undefined;
      return;
    }
    // A false start (the magic as a string literal in some program's data): search on after it.
    this.#state = 'search';
    this.#blob = undefined;
    const rest = blob.subarray(1);
    const restStart = this.#offset - rest.length;
    this.#tail = Buffer.alloc(0);
    this.#offset = restStart;
    this.#search(rest);
  }

  finish(): GoBuildInfo | undefined {
    if (this.#state === 'collect') this.#tryDecode(true);
    if (!this.#result) return undefined;
    return parseModinfo(this.#result.goVersion, this.#result.modinfo);
  }
}

/** The text format runtime/debug.BuildInfo.String writes (and ParseBuildInfo reads). */
export function parseModinfo(goVersion: string, modinfo: string): GoBuildInfo {
  const info: GoBuildInfo = { goVersion, deps: [], settings: {} };
  let last: GoModule | undefined;
  for (const line of modinfo.split('\n')) {
    const [kind, ...cols] = line.split('\t');
    if (kind === 'path') info.path = cols[0];
    else if ((kind === 'mod' || kind === 'dep') && cols.length >= 2) {
      last = { path: cols[0]!, version: cols[1]!, sum: cols[2] || undefined };
      if (kind === 'mod') info.main = last;
      else info.deps.push(last);
    } else if (kind === '=>' && cols.length >= 2 && last) {
      last.replace = { path: cols[0]!, version: cols[1]!, sum: cols[2] || undefined };
      last = undefined;
    } else if (kind === 'build' && cols.length >= 1) {
      const kv = cols.join('\t');
      const eq = kv.indexOf('=');
      if (eq > 0) info.settings[kv.slice(0, eq)] = kv.slice(eq + 1);
    }
  }
  return info;
}

/**
 * Packages of one Go binary: the main module, every dependency (as replaced, when a `=>` line says
 * so; a local-directory replacement has no version and keeps the original's), and the standard
 * library at the toolchain's version.
 */
export function goPackages(info: GoBuildInfo): FoundPackage[] {
  const out: FoundPackage[] = [];
  const add = (m: GoModule): void => {
    // A replacement by a local directory (`=> ./greet (devel)`) is not a module anyone can fetch: keep the required one.
    const local = m.replace !== undefined && /^(\.{1,2}\/|\/)/.test(m.replace.path);
    const use = m.replace && !local && m.replace.version !== '' ? m.replace : m;
    // A `dep` line with empty columns (a damaged or forged blob) names no package.
    if (use.path === '' || use.version === '') return;
    out.push({ type: 'golang', name: use.path, version: use.version, licenses: [], foundBy: 'go-buildinfo' });
  };
  if (info.main && info.main.path !== '') add(info.main);
  info.deps.forEach(add);
  const std = /^go(\d+(?:\.\d+)*(?:(?:rc|beta)\d+)?)/.exec(info.goVersion);
  if (std) out.push({ type: 'golang', name: 'stdlib', version: `go${std[1]}`, licenses: ['BSD-3-Clause'], foundBy: 'go-buildinfo' });
  return out;
}
