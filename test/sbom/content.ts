/**
 * Real content of this machine for SBOM test images, and the truth about it from independent
 * tools: `dpkg-query` for the Debian packages, `go version -m` for the Go binary, the files
 * themselves for Python and npm metadata.
 */
import { lstat, readdir, readFile, readlink, stat, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { runChecked } from '../../hack/lib/harness/procs.js';
import type { LayerItem } from './layered-image.js';

export const DEB_PACKAGES = [
  'base-files',
  'bash',
  'ca-certificates',
  'coreutils',
  'curl',
  'dpkg',
  'grep',
  'gzip',
  'libc6',
  'libffi-dev',
  'libffi8',
  'libssl3',
  'sed',
  'tar',
  'zlib1g',
];
/** A package whose /usr/share/doc directory is, on Debian 12, a symlink to another package's (its licenses are there). */
export const DOC_LINKED = { pkg: 'libffi-dev', target: 'libffi8' };
/** A package put in `status.d/` (distroless style) rather than the main database. */
export const STATUS_D_PACKAGE = 'hostname';

export interface DebTruth {
  name: string;
  version: string;
  arch: string;
}

/** The stanzas of the named packages, verbatim from this machine's dpkg database. */
export async function dpkgStanzas(names: readonly string[]): Promise<string> {
  const text = await readFile('/var/lib/dpkg/status', 'utf8');
  const want = new Set(names);
  const stanzas = text.split(/\n\n+/).filter((s) => {
    const m = /^Package: (\S+)$/m.exec(s);
    return m !== null && want.has(m[1]!);
  });
  return stanzas.join('\n\n') + '\n';
}

export async function dpkgTruth(names: readonly string[]): Promise<DebTruth[]> {
  const { stdout } = await runChecked('dpkg-query', ['-W', '-f', '${Package}\\t${Version}\\t${Architecture}\\n', ...names]);
  return stdout
    .trim()
    .split('\n')
    .map((l) => {
      const [name, version, arch] = l.split('\t') as [string, string, string];
      return { name, version, arch };
    });
}

/** Each package's copyright file, or, where its doc directory is a symlink here, that symlink (as Debian ships it). */
export async function copyrightItems(names: readonly string[]): Promise<LayerItem[]> {
  const out: LayerItem[] = [];
  for (const n of names) {
    const dir = `/usr/share/doc/${n}`;
    if ((await lstat(dir)).isSymbolicLink()) out.push({ path: `usr/share/doc/${n}`, symlink: await readlink(dir) });
    else out.push({ path: `usr/share/doc/${n}/copyright`, from: `${dir}/copyright` });
  }
  return out;
}

export const PY_DIR = '/usr/lib/python3/dist-packages';

export interface PyTruth {
  /** Directory name, e.g. `PyYAML-6.0.dist-info`. */
  dir: string;
  name: string;
  version: string;
  item: LayerItem;
}

/** Every dist-info METADATA and egg-info PKG-INFO (directory or single file) of the system Python. */
export async function pythonMetadata(): Promise<PyTruth[]> {
  const out: PyTruth[] = [];
  for (const dir of (await readdir(PY_DIR)).sort()) {
    let file: string;
    if (dir.endsWith('.dist-info')) file = join(PY_DIR, dir, 'METADATA');
    else if (dir.endsWith('.egg-info')) file = (await stat(join(PY_DIR, dir))).isDirectory() ? join(PY_DIR, dir, 'PKG-INFO') : join(PY_DIR, dir);
    else continue;
    const text = await readFile(file, 'utf8').catch(() => undefined);
    if (text === undefined) continue;
    const name = /^Name: (.+)$/m.exec(text)?.[1]?.trim();
    const version = /^Version: (.+)$/m.exec(text)?.[1]?.trim();
    if (!name || !version) continue;
    out.push({ dir, name, version, item: { path: `usr/lib/python3/dist-packages/${file.slice(PY_DIR.length + 1)}`, from: file } });
  }
  return out;
}

export interface NpmTruth {
  name: string;
  version: string;
  /** Directory under node_modules (`yaml`, `@kubernetes/client-node`). */
  dir: string;
  item: LayerItem;
}

/** The package.json of every top-level (and scoped) package in the repository's node_modules. */
export async function npmPackages(nodeModules: string, imageDir: string): Promise<NpmTruth[]> {
  const out: NpmTruth[] = [];
  const add = async (dir: string): Promise<void> => {
    const file = join(nodeModules, dir, 'package.json');
    const doc = JSON.parse(await readFile(file, 'utf8').catch(() => '{}')) as { name?: string; version?: string };
    if (typeof doc.name === 'string' && typeof doc.version === 'string') {
      out.push({ name: doc.name, version: doc.version, dir, item: { path: `${imageDir}/${dir}/package.json`, from: file } });
    }
  };
  for (const d of (await readdir(nodeModules)).sort()) {
    if (d.startsWith('.')) continue;
    if (d.startsWith('@')) for (const s of (await readdir(join(nodeModules, d))).sort()) await add(`${d}/${s}`);
    else await add(d);
  }
  return out;
}

export interface GoTruth {
  binary: string;
  goVersion: string;
  main: { path: string; version: string };
  deps: { path: string; version: string }[];
}

/**
 * Compiles a tiny Go program whose one dependency is replaced by a local directory (so the build
 * info has `mod`, `dep` and `=>` lines), offline, and reads the truth back with `go version -m`.
 */
export async function buildGoBinary(dir: string): Promise<GoTruth> {
  await mkdir(join(dir, 'greet'), { recursive: true });
  await writeFile(join(dir, 'go.mod'), 'module example.com/hello\n\ngo 1.21\n\nrequire example.com/greet v1.2.3\n\nreplace example.com/greet => ./greet\n');
  await writeFile(join(dir, 'main.go'), 'package main\n\nimport "example.com/greet"\n\nfunc main() { println(greet.Hello()) }\n');
  await writeFile(join(dir, 'greet', 'go.mod'), 'module example.com/greet\n\ngo 1.21\n');
  await writeFile(join(dir, 'greet', 'greet.go'), 'package greet\n\nfunc Hello() string { return "hello" }\n');
  const env = { ...process.env, GOFLAGS: '-mod=mod -buildvcs=false', GOPROXY: 'off', GOTOOLCHAIN: 'local', CGO_ENABLED: '0' };
  await runChecked('go', ['build', '-trimpath', '-o', 'hello', '.'], { cwd: dir, env, timeoutMs: 180_000 });
  const binary = join(dir, 'hello');
  const { stdout } = await runChecked('go', ['version', '-m', binary], { env });
  const lines = stdout.split('\n').map((l) => l.trim().split('\t'));
  const goVersion = stdout.split('\n')[0]!.split(': ')[1]!.trim();
  const mod = lines.find((l) => l[0] === 'mod')!;
  const deps = lines.filter((l) => l[0] === 'dep').map((l) => ({ path: l[1]!, version: l[2]! }));
  return { binary, goVersion, main: { path: mod[1]!, version: mod[2]! }, deps };
}
