/**
 * Real Go programs: the pinned helm, kube-apiserver and cosign binaries the test tools build
 * (hack/helm.mk, hack/controlplane.mk, hack/cosign.mk), pushed to a registry in one layer of ~250 MB, catalogued by
 * the `stevedore sbom` command, and checked against `go version -m`. The command's peak memory is
 * measured for a small and a large layer: the layers stream through, so it hardly grows with their size.
 */
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyReference } from '../../src/copy/copy.js';
import { parseImageName } from '../../src/transports/index.js';
import { ensureBuilt, REPO_ROOT } from '../cli/stevedore.js';
import { runChecked, runCommand } from '../../hack/lib/harness/procs.js';
import { startRegistry, type TestRegistry } from '../../hack/lib/harness/registry.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';
import { buildLayeredImage } from './layered-image.js';

const BIN = join(process.env.STEVEDORE_CACHE ?? join(homedir(), '.cache', 'stevedore'), 'bin');
const BINARIES: Record<string, string> = {
  helm: join(BIN, 'helm-v3.22.0'),
  'kube-apiserver': join(BIN, 'kube-apiserver-v1.34.4'),
  cosign: process.env.COSIGN ?? join(BIN, 'cosign-v2.6.5'),
};
const MAKE_TARGET: Record<string, string> = { helm: 'helm', 'kube-apiserver': 'controlplane', cosign: 'cosign' };
let layerBytes = 0;
let smallBytes = 0;
const temps = new TempDirs();
let reg: TestRegistry;

interface ModuleLine {
  path: string;
  version: string;
}

async function goVersionM(file: string): Promise<{ go: string; main: ModuleLine; deps: ModuleLine[] }> {
  const { stdout } = await runChecked('go', ['version', '-m', file], { env: { ...process.env, GOTOOLCHAIN: 'local' } });
  const lines = stdout.split('\n').map((l) => l.trim().split('\t'));
  const deps: ModuleLine[] = [];
  let last: ModuleLine | undefined;
  let main: ModuleLine | undefined;
  for (const l of lines) {
    if (l[0] === 'mod') main = { path: l[1]!, version: l[2]! };
    else if (l[0] === 'dep') deps.push((last = { path: l[1]!, version: l[2]! }));
    else if (l[0] === '=>' && last && !/^\.{0,2}\//.test(l[1]!)) Object.assign(last, { path: l[1]!, version: l[2]! });
  }
  return { go: stdout.split('\n')[0]!.split(': ')[1]!.trim(), main: main!, deps };
}

beforeAll(async () => {
  for (const [name, file] of Object.entries(BINARIES)) {
    if (!existsSync(file)) throw new Error(`${file} is missing: run "make ${MAKE_TARGET[name]}" first`);
    layerBytes += (await stat(file)).size;
  }
  reg = await startRegistry({ name: 'sbom-go' });
  const image = await buildLayeredImage(await temps.make('sbom-go-bins'), 'go', [
    Object.entries(BINARIES).map(([name, from]) => ({ path: `usr/local/bin/${name}`, from })),
  ]);
  await copyReference(parseImageName(image.ociRef), parseImageName(`docker://${reg.host}/go/bins:1`));
  const small = await buildLayeredImage(await temps.make('sbom-go-small'), 'helm', [[{ path: 'usr/local/bin/helm', from: BINARIES.helm! }]]);
  smallBytes = (await stat(BINARIES.helm!)).size;
  await copyReference(parseImageName(small.ociRef), parseImageName(`docker://${reg.host}/go/helm:1`));
  await ensureBuilt();
}, 300_000);

afterAll(async () => {
  await reg?.stop();
  await temps.cleanup();
});

/** Runs `stevedore sbom` under GNU time, which reports the child's peak resident set size. */
async function sbomWithPeak(image: string, out: string): Promise<number> {
  const res = await runCommand(
    '/usr/bin/time',
    ['-f', 'maxrss_kb=%M', process.execPath, join(REPO_ROOT, 'bin', 'stevedore.js'), 'sbom', '--format', 'cyclonedx-json', '-o', out, image],
    { timeoutMs: 120_000 },
  );
  expect(res.code, res.stderr).toBe(0);
  return Number(/maxrss_kb=(\d+)/.exec(res.stderr)?.[1]) * 1024;
}

describe('Go binaries of real programs', () => {
  it("lists each binary's modules as go version -m does, and peak memory does not grow with the layer", async () => {
    const dir = await temps.make('sbom-go-out');
    const out = join(dir, 'bom.json');
    const maxrss = await sbomWithPeak(`docker://${reg.host}/go/bins:1`, out);
    const smallRss = await sbomWithPeak(`docker://${reg.host}/go/helm:1`, join(dir, 'helm.json'));
    const bom = JSON.parse(await readFile(out, 'utf8')) as { components: { purl: string; properties: { name: string; value: string }[] }[] };
    for (const [name, file] of Object.entries(BINARIES)) {
      const truth = await goVersionM(file);
      const here = bom.components
        .filter((c) => c.properties.some((p) => p.name === 'stevedore:location' && p.value === `/usr/local/bin/${name}`))
        .map((c) => c.purl);
      const expected = [truth.main, ...truth.deps].map((m) => {
        const parts = m.path.split('/');
        const last = parts.pop()!;
        return `pkg:golang/${[...parts.map(encodeURIComponent), encodeURIComponent(last)].join('/')}@${encodeURIComponent(m.version).replace(/%2B/g, '+')}`;
      });
      // A module both binaries use is listed once (under the first binary's location), so check containment per binary.
      const all = new Set(bom.components.map((c) => c.purl));
      for (const e of expected) expect(all, `${name}: ${e}`).toContain(e);
      expect(here.length, name).toBeGreaterThan(0);
      expect(all).toContain(`pkg:golang/stdlib@${truth.go.replace(/^go/, '')}`);
    }
    const mib = (n: number): string => `${(n / 2 ** 20).toFixed(0)} MiB`;
    console.log(`stevedore sbom peak RSS: ${mib(smallRss)} for a ${mib(smallBytes)} layer, ${mib(maxrss)} for a ${mib(layerBytes)} layer (uncompressed)`);
    // Streaming: 200 MB more layer costs a few tens of MB more peak (garbage awaiting collection),
    // where a buffered layer would cost all of it.
    expect(maxrss - smallRss).toBeLessThan((layerBytes - smallBytes) * 0.4);
  });
});
