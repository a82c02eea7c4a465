/**
 * The import graph of src/, read from the sources (no build): for each file, the files it imports
 * through relative specifiers, static or dynamic, and whether each import survives type erasure.
 *
 * A small resolver rather than a parser: the code base writes every static import and re-export at
 * the start of a line (`import ... from './x.js'`, `export ... from './x.js'`, possibly over several
 * lines), and dynamic imports as `import('./x.js')`. Comments are removed first (a string-aware
 * scan), so an import quoted in a doc comment is not an edge. Specifiers end in `.js` and name the
 * `.ts` file beside them (NodeNext resolution); bare specifiers (`node:fs`, packages) are not edges.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

export interface ImportEdge {
  /** Importing and imported file, relative to the repository root (`src/cli/main.ts`). */
  from: string;
  to: string;
  /** 1-based line of the import in `from`. */
  line: number;
  /** `import type` / `export type`, or every named specifier marked `type`: erased at run time. */
  typeOnly: boolean;
  dynamic: boolean;
}

/** Removes `//` and `/* *\/` comments, keeping strings, template literals and line breaks. */
export function stripComments(src: string): string {
  let out = '';
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    const next = src[i + 1];
    if (c === '/' && next === '/') {
      while (i < src.length && src[i] !== '\n') i++;
    } else if (c === '/' && next === '*') {
      const end = src.indexOf('*/', i + 2);
      const stop = end < 0 ? src.length : end + 2;
      out += src.slice(i, stop).replace(/[^\n]/g, ' ');
      i = stop;
    } else if (c === "'" || c === '"' || c === '`') {
      let j = i + 1;
      while (j < src.length && src[j] !== c) j += src[j] === '\\' ? 2 : 1;
      out += src.slice(i, j + 1);
      i = j + 1;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

const STATIC = /^(import|export)\s+(type\s+)?([^'";]*?)\s*from\s*['"]([^'"]+)['"]|^import\s*['"]([^'"]+)['"]/gm;
const DYNAMIC = /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;

function lineOf(text: string, index: number): number {
  let n = 1;
  for (let i = 0; i < index; i++) if (text.charCodeAt(i) === 10) n++;
  return n;
}

/** `import { type A, type B }` is erased; `import { type A, B }` or `import X` is not. */
function clauseIsTypeOnly(clause: string): boolean {
  const braces = /^\{([^}]*)\}$/.exec(clause.trim());
  if (!braces) return false;
  const names = braces[1]!
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  return names.length > 0 && names.every((n) => n.startsWith('type '));
}

function* tsFiles(dir: string): Generator<string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* tsFiles(p);
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) yield p;
  }
}

/** Every relative import of every `.ts` file under `root/srcDir`. */
export function importGraph(root: string, srcDir = 'src'): { files: string[]; edges: ImportEdge[] } {
  const files: string[] = [];
  const edges: ImportEdge[] = [];
  for (const abs of tsFiles(join(root, srcDir))) {
    const from = relative(root, abs);
    files.push(from);
    const text = stripComments(readFileSync(abs, 'utf8'));
    const add = (spec: string, index: number, typeOnly: boolean, dynamic: boolean): void => {
      if (!spec.startsWith('.')) return;
      const to = relative(root, resolve(dirname(abs), spec.replace(/\.js$/, '.ts')));
      edges.push({ from, to, line: lineOf(text, index), typeOnly, dynamic });
    };
    for (const m of text.matchAll(STATIC)) {
      if (m[5] !== undefined) add(m[5], m.index, false, false);
      else add(m[4]!, m.index, m[2] !== undefined || clauseIsTypeOnly(m[3]!), false);
    }
    for (const m of text.matchAll(DYNAMIC)) add(m[1]!, m.index, false, true);
  }
  return { files: files.sort(), edges };
}

/** The top folder of a file under src/ (`src/k8s/api/x.ts` → `k8s`), or the file itself at the top. */
export function layerOf(file: string): string {
  const parts = file.split('/');
  return parts.length > 2 ? parts[1]! : parts[1]!.replace(/\.ts$/, '');
}

/**
 * Import cycles, type-only imports included (erased at run time, but a cycle of types is still two
 * files that cannot be understood apart): one shortest cycle per strongly connected component, as
 * the files around it, starting from the alphabetically first and ending where it began.
 */
export function importCycles(files: readonly string[], edges: readonly ImportEdge[]): string[][] {
  const out = new Map<string, string[]>();
  for (const f of files) out.set(f, []);
  for (const e of edges) if (out.has(e.to)) out.get(e.from)!.push(e.to);

  // Tarjan's strongly connected components.
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    onStack.add(v);
    for (const w of out.get(v)!) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const comp: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1 || out.get(v)!.includes(v)) components.push(comp.sort());
    }
  };
  for (const f of files) if (!index.has(f)) visit(f);

  // In each component, the shortest cycle through its first file (breadth-first inside the component).
  return components
    .map((comp) => {
      const inComp = new Set(comp);
      const start = comp[0]!;
      const prev = new Map<string, string>();
      const queue = [start];
      while (queue.length > 0) {
        const v = queue.shift()!;
        for (const w of out.get(v)!) {
          if (!inComp.has(w)) continue;
          if (w === start) {
            const path = [v];
            while (path[0] !== start) path.unshift(prev.get(path[0]!)!);
            return [...path, start];
          }
          if (!prev.has(w)) {
            prev.set(w, v);
            queue.push(w);
          }
        }
      }
      return [...comp, start];
    })
    .sort((a, b) => a[0]!.localeCompare(b[0]!));
}
