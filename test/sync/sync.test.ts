/**
 * `sync` against real registries: a source registry (behind a fault proxy that records every
 * request), a destination registry, and a basic-auth source. Tag sets are chosen the skopeo-sync
 * way (explicit lists, all tags, regex, semver) from YAML files loaded by `loadSyncConfig`.
 */
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyReference } from '../../src/copy/copy.js';
import { loadSyncConfig } from '../../src/copy/sync-config.js';
import { sync, type SyncItem, type SyncOptions, type SyncReport, type SyncTarget } from '../../src/copy/sync.js';
import type { Digest } from '../../src/oci/digest.js';
import { RegistryClient } from '../../src/registry/client.js';
import { headManifest } from '../../src/registry/manifests.js';
import { listTags } from '../../src/registry/tags.js';
import { parseImageName } from '../../src/transports/index.js';
import type { TransportContext } from '../../src/transports/types.js';
import { makeIndex, makeRandomImage, type FixtureImage, type FixtureIndex } from '../../hack/lib/harness/images.js';
import { startFaultProxy, type FaultProxy } from '../harness/fault-proxy.js';
import { startRegistry, type TestRegistry } from '../../hack/lib/harness/registry.js';
import { skopeo } from '../harness/skopeo.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';

const temps = new TempDirs();
let src: TestRegistry;
let dst: TestRegistry;
let basic: TestRegistry;
let proxy: FaultProxy;
let fixtures: string;
/** The images behind the semver-ish tags of `lib/app` at the source. */
const images: Record<string, FixtureImage> = {};
let index: FixtureIndex;
const savedEnv: Record<string, string | undefined> = {};

const APP_TAGS = ['1.0.0', '1.2.0', '2.0.0', 'v1.5.0', 'latest'];

async function push(ociRef: string, dest: string, destContext?: TransportContext): Promise<Digest> {
  return (await copyReference(parseImageName(ociRef), parseImageName(dest), { all: true, destContext })).digest;
}

async function image(ref: string, seed?: string): Promise<FixtureImage> {
  return makeRandomImage({ layers: 1, layerSize: 2048, layoutDir: fixtures, ref, seed });
}

beforeAll(async () => {
  // Stevedore looks credentials up in the usual files when a spec carries none: make them empty.
  const envDir = await temps.make('sync-env');
  await writeFile(join(envDir, 'auth.json'), '{"auths":{}}');
  for (const [k, v] of Object.entries({
    REGISTRY_AUTH_FILE: join(envDir, 'auth.json'),
    XDG_RUNTIME_DIR: envDir,
    XDG_CONFIG_HOME: envDir,
    DOCKER_CONFIG: envDir,
  })) {
    savedEnv[k] = process.env[k];
    process.env[k] = v;
  }
  [src, dst, basic] = await Promise.all([
    startRegistry({ name: 'sync-src' }),
    startRegistry({ name: 'sync-dst' }),
    startRegistry({ name: 'sync-basic', auth: 'basic' }),
  ]);
  proxy = await startFaultProxy(src.url);
  fixtures = await temps.make('sync-fixtures');
  for (const tag of APP_TAGS) {
    // `latest` is the same image as 2.0.0, as on most real repositories.
    images[tag] = tag === 'latest' ? images['2.0.0']! : await image(`app-${tag}`);
    await push(images[tag]!.ociRef, `docker://${src.host}/lib/app:${tag}`);
  }
  for (const tag of ['a', 'b']) await push((await image(`other-${tag}`)).ociRef, `docker://${src.host}/lib/other:${tag}`);
  index = await makeIndex(await temps.make('sync-index'), 'multi', ['linux/amd64', 'linux/arm64/v8'], { layers: 1, layerSize: 2048 });
  await push(index.ociRef, `docker://${src.host}/lib/multi:1`);
  await push(images['1.0.0']!.ociRef, `docker://${basic.host}/private/app:1.0.0`, { credentials: { username: basic.username!, password: basic.password! } });
});

afterAll(async () => {
  await proxy?.stop();
  await Promise.all([src?.stop(), dst?.stop(), basic?.stop()]);
  await temps.cleanup();
  for (const [k, v] of Object.entries(savedEnv)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

let configCount = 0;
async function config(yaml: string): Promise<string> {
  const file = join(fixtures, `sync-${++configCount}.yaml`);
  await writeFile(file, yaml);
  return file;
}

async function runSync(yaml: string, target: SyncTarget, opts: SyncOptions = {}): Promise<SyncReport> {
  return sync(await loadSyncConfig(await config(yaml)), target, opts);
}

function toDst(prefix: string): SyncTarget {
  return { kind: 'registry', registry: dst.host, prefix };
}

const clients: RegistryClient[] = [];
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
});
function client(reg: { host: string }): RegistryClient {
  const c = new RegistryClient({ registry: reg.host });
  clients.push(c);
  return c;
}

async function tagsAt(reg: { host: string }, repo: string): Promise<string[]> {
  try {
    return (await listTags(client(reg), repo)).sort();
  } catch (err) {
    if ((err as { code?: string }).code === 'NOT_FOUND') return [];
    throw err;
  }
}

async function digestAt(reg: { host: string }, repo: string, ref: string): Promise<Digest | undefined> {
  return (await headManifest(client(reg), repo, ref))?.digest;
}

function byTag(report: SyncReport): Record<string, SyncItem['action']> {
  return Object.fromEntries(report.items.map((i) => [i.tag, i.action]));
}

describe('sync: choosing tags', () => {
  it('copies explicit tags, and every tag for an empty list, under the destination prefix', async () => {
    const report = await runSync(`${proxy.host}:\n  images:\n    lib/app: ["1.0.0", "latest"]\n    lib/other: []\n`, toDst('mirror'));
    expect(report.failed, JSON.stringify(report.items)).toBe(0);
    expect(byTag(report)).toEqual({ '1.0.0': 'copied', latest: 'copied', a: 'copied', b: 'copied' });
    expect(await tagsAt(dst, 'mirror/lib/app')).toEqual(['1.0.0', 'latest']);
    expect(await tagsAt(dst, 'mirror/lib/other')).toEqual(['a', 'b']);
    expect(await digestAt(dst, 'mirror/lib/app', '1.0.0')).toBe(images['1.0.0']!.manifest.digest);
    expect(await digestAt(dst, 'mirror/lib/app', 'latest')).toBe(images['2.0.0']!.manifest.digest);
    const item = report.items.find((i) => i.tag === '1.0.0')!;
    expect(item.destination).toBe(`docker://${dst.host}/mirror/lib/app:1.0.0`);
    expect(item.digest).toBe(images['1.0.0']!.manifest.digest);
  });

  it('copies the tags a regex matches, and only those', async () => {
    const report = await runSync(`${proxy.host}:\n  images-by-tag-regex:\n    lib/app: ^1\\.\\d+\\.\\d+$\n`, toDst('regex'));
    expect(report.copied).toBe(2);
    expect(await tagsAt(dst, 'regex/lib/app')).toEqual(['1.0.0', '1.2.0']);
  });

  it('copies the tags in a semver range (v-prefixed versions included, non-versions never)', async () => {
    const report = await runSync(`${proxy.host}:\n  images-by-semver:\n    lib/app: ">= 1.1.0 < 2.0.0"\n`, toDst('semver'));
    expect(report.failed).toBe(0);
    expect(await tagsAt(dst, 'semver/lib/app')).toEqual(['1.2.0', 'v1.5.0']);
    expect(await digestAt(dst, 'semver/lib/app', 'v1.5.0')).toBe(images['v1.5.0']!.manifest.digest);
  });
});

describe('sync: skipping, dry runs and changes', () => {
  const yaml = () => `${proxy.host}:\n  images:\n    lib/app: ["1.0.0", "1.2.0", "latest"]\n`;

  it('a rerun skips every unchanged tag after one HEAD per tag, with no manifest or blob GET', async () => {
    const first = await runSync(yaml(), toDst('skip'));
    expect(first.copied).toBe(3);
    proxy.clearHits();
    const again = await runSync(yaml(), toDst('skip'));
    expect(byTag(again)).toEqual({ '1.0.0': 'skipped', '1.2.0': 'skipped', latest: 'skipped' });
    expect(again.skipped).toBe(3);
    expect(again.copied).toBe(0);
    const manifestHits = proxy.hits(/\/manifests\//);
    expect(manifestHits.map((h) => h.method)).toEqual(['HEAD', 'HEAD', 'HEAD']);
    expect(proxy.hits(/\/blobs\//)).toEqual([]);
  });

  it('--dry-run reports would-copy for a changed tag and changes nothing', async () => {
    const changed = await image('app-1.2.0-new');
    await push(changed.ociRef, `docker://${src.host}/lib/app:1.2.0`);
    try {
      const before = await digestAt(dst, 'skip/lib/app', '1.2.0');
      const report = await runSync(yaml(), toDst('skip'), { dryRun: true });
      expect(byTag(report)).toEqual({ '1.0.0': 'skipped', '1.2.0': 'would-copy', latest: 'skipped' });
      expect(report.copied).toBe(0);
      expect(report.wouldCopy).toBe(1);
      expect(await digestAt(dst, 'skip/lib/app', '1.2.0')).toBe(before);
      // A dry run into a new prefix creates nothing either.
      const fresh = await runSync(yaml(), toDst('dry-fresh'), { dryRun: true });
      expect(fresh.items.map((i) => i.action)).toEqual(['would-copy', 'would-copy', 'would-copy']);
      expect(await tagsAt(dst, 'dry-fresh/lib/app')).toEqual([]);

      // The real run copies just the changed tag.
      proxy.clearHits();
      const real = await runSync(yaml(), toDst('skip'));
      expect(byTag(real)).toEqual({ '1.0.0': 'skipped', '1.2.0': 'copied', latest: 'skipped' });
      expect(await digestAt(dst, 'skip/lib/app', '1.2.0')).toBe(changed.manifest.digest);
      const gets = proxy.hits(/\/manifests\//).filter((h) => h.method === 'GET');
      expect(gets.length).toBeGreaterThan(0);
      expect(gets.every((h) => h.path.includes('/lib/app/manifests/1.2.0') || h.path.includes(changed.manifest.digest))).toBe(true);
    } finally {
      await push(images['1.2.0']!.ociRef, `docker://${src.host}/lib/app:1.2.0`);
    }
  });
});

describe('sync: prune', () => {
  it('deletes destination tags the selection no longer has, but never a digest a kept tag shares', async () => {
    await runSync(`${proxy.host}:\n  images:\n    lib/app: []\n`, toDst('prune'));
    expect(await tagsAt(dst, 'prune/lib/app')).toEqual([...APP_TAGS].sort());

    // Keep 2.0.0 and 1.0.0 only: 1.2.0 and v1.5.0 go; latest shares 2.0.0's digest and must stay.
    const keep = `${proxy.host}:\n  images:\n    lib/app: ["1.0.0", "2.0.0"]\n`;
    const dry = await runSync(keep, toDst('prune'), { prune: true, dryRun: true });
    expect(
      dry.items
        .filter((i) => i.action === 'would-prune')
        .map((i) => i.tag)
        .sort(),
    ).toEqual(['1.2.0', 'v1.5.0']);
    expect([dry.wouldPrune, dry.pruned, dry.failed]).toEqual([2, 0, 0]);
    expect(await tagsAt(dst, 'prune/lib/app')).toEqual([...APP_TAGS].sort());

    const report = await runSync(keep, toDst('prune'), { prune: true });
    expect(
      report.items
        .filter((i) => i.action === 'pruned')
        .map((i) => i.tag)
        .sort(),
    ).toEqual(['1.2.0', 'v1.5.0']);
    expect(report.pruned).toBe(2);
    // latest shares 2.0.0's digest: left in place, which is not a failure (it was one on every run).
    const left = report.items.find((i) => i.tag === 'latest')!;
    expect(left.action).toBe('skipped');
    expect(left.note).toMatch(/shares its digest with kept tag 2\.0\.0/);
    expect(report.failed).toBe(0);
    expect(await tagsAt(dst, 'prune/lib/app')).toEqual(['1.0.0', '2.0.0', 'latest']);

    // Now both tags of that digest go: one DELETE, and both are reported as pruned.
    const last = await runSync(`${proxy.host}:\n  images:\n    lib/app: ["1.0.0"]\n`, toDst('prune'), { prune: true });
    expect(
      last.items
        .filter((i) => i.action === 'pruned')
        .map((i) => i.tag)
        .sort(),
    ).toEqual(['2.0.0', 'latest']);
    expect(last.failed).toBe(0);
    expect(await tagsAt(dst, 'prune/lib/app')).toEqual(['1.0.0']);
  });

  it("a tag that failed to sync is not pruned, and two selections of one repository keep each other's tags", async () => {
    await runSync(`${proxy.host}:\n  images:\n    lib/app: ["1.0.0", "1.2.0", "2.0.0"]\n`, toDst('prune2'));
    // 1.2.0 is missing at the source for this run (HEAD and GET answer 404).
    const fault = proxy.addFault({ pathRegex: /\/lib\/app\/manifests\/1\.2\.0$/, kind: 'status', status: 404, times: Infinity });
    try {
      const report = await runSync(
        `${proxy.host}:\n  images:\n    lib/app: ["1.0.0", "1.2.0"]\n  images-by-semver:\n    lib/app: ">= 2.0.0"\n`,
        toDst('prune2'),
        { prune: true, keepGoing: true },
      );
      expect(report.items.filter((i) => i.action === 'failed').map((i) => i.tag)).toEqual(['1.2.0']);
      expect(report.pruned).toBe(0);
    } finally {
      fault.remove();
    }
    expect(await tagsAt(dst, 'prune2/lib/app')).toEqual(['1.0.0', '1.2.0', '2.0.0']);
  });
});

describe('sync: failures', () => {
  const yaml = () => `${proxy.host}:\n  images:\n    lib/app: ["1.0.0", "no-such-tag", "2.0.0"]\n`;

  it('with keepGoing copies the others and reports the missing tag', async () => {
    const seen: SyncItem[] = [];
    const report = await runSync(yaml(), toDst('keep'), { keepGoing: true, onItem: (i) => seen.push(i) });
    expect(byTag(report)).toEqual({ '1.0.0': 'copied', 'no-such-tag': 'failed', '2.0.0': 'copied' });
    expect(report.failed).toBe(1);
    const failed = report.items.find((i) => i.action === 'failed')!;
    expect(failed.error).toMatch(/no-such-tag/);
    expect(failed.source).toBe(`docker://${proxy.host}/lib/app:no-such-tag`);
    expect(seen).toHaveLength(3);
    expect(await tagsAt(dst, 'keep/lib/app')).toEqual(['1.0.0', '2.0.0']);
  });

  it('without keepGoing stops with an error naming the image', async () => {
    await expect(runSync(yaml(), toDst('stop'), { parallelImages: 1 })).rejects.toThrow(/no-such-tag.*does not exist/);
    // Sequential: the image after the failure was never started.
    expect(await tagsAt(dst, 'stop/lib/app')).toEqual(['1.0.0']);
  });

  it('a repository the source does not have fails the sync, naming it', async () => {
    await expect(runSync(`${proxy.host}:\n  images:\n    lib/nothing-here: []\n`, toDst('none'))).rejects.toThrow(/lib\/nothing-here/);
  });
});

describe('sync: other destinations and sources', () => {
  it('writes one OCI layout per repository that skopeo reads, and skips on a rerun', async () => {
    const dir = await temps.make('sync-layouts');
    const yaml = `${proxy.host}:\n  images:\n    lib/app: ["1.0.0", "2.0.0"]\n    lib/other: ["a"]\n`;
    const report = await runSync(yaml, { kind: 'layout', dir });
    expect(report.copied).toBe(3);
    for (const [repo, tag, digest] of [
      ['lib/app', '1.0.0', images['1.0.0']!.manifest.digest],
      ['lib/app', '2.0.0', images['2.0.0']!.manifest.digest],
    ] as const) {
      const r = await skopeo(['inspect', `oci:${join(dir, repo)}:${tag}`]);
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).Digest).toBe(digest);
    }
    const other = await skopeo(['inspect', '--raw', `oci:${join(dir, 'lib/other')}:a`]);
    expect(other.code, other.stderr).toBe(0);
    const again = await runSync(yaml, { kind: 'layout', dir });
    expect(again.skipped).toBe(3);
  });

  it('a dry run into layouts creates nothing on disk', async () => {
    const dir = join(await temps.make('sync-layouts-dry'), 'out');
    const report = await runSync(`${proxy.host}:\n  images:\n    lib/app: ["1.0.0"]\n`, { kind: 'layout', dir }, { dryRun: true });
    expect(report.items.map((i) => i.action)).toEqual(['would-copy']);
    expect(report.items[0]!.destination).toBe(`oci:${join(dir, 'lib/app')}:1.0.0`);
    expect(existsSync(dir)).toBe(false);
  });

  it("an unwritable layout directory is that image's failure, reported under keepGoing", async () => {
    const file = join(await temps.make('sync-layouts-file'), 'not-a-dir');
    await writeFile(file, 'x');
    const report = await runSync(`${proxy.host}:\n  images:\n    lib/app: ["1.0.0", "2.0.0"]\n`, { kind: 'layout', dir: file }, { keepGoing: true });
    expect(report.items.map((i) => i.action)).toEqual(['failed', 'failed']);
    expect(report.items[0]!.error).toMatch(/not-a-dir/);
  });

  it('syncs a multi-arch index with its digest and every platform', async () => {
    const report = await runSync(`${proxy.host}:\n  images:\n    lib/multi: ["1"]\n`, toDst('multi'));
    expect(report.items[0]).toMatchObject({ action: 'copied', digest: index.index.digest });
    expect(await digestAt(dst, 'multi/lib/multi', '1')).toBe(index.index.digest);
    for (const child of index.images) {
      expect(await digestAt(dst, 'multi/lib/multi', child.manifest.digest)).toBe(child.manifest.digest);
    }
    const all = await skopeo(['copy', '--all', '--src-tls-verify=false', `docker://${dst.host}/multi/lib/multi:1`, `oci:${await temps.make('sk-multi')}:x`]);
    expect(all.code, all.stderr).toBe(0);
  });

  it('uses credentials from the YAML for a basic-auth source, and fails clearly without them', async () => {
    const yaml = (creds: string) => `${basic.host}:\n  images:\n    private/app: ["1.0.0"]\n${creds}  tls-verify: false\n`;
    const report = await runSync(yaml(`  credentials:\n    username: ${basic.username}\n    password: "${basic.password}"\n`), toDst('auth'));
    expect(report.copied).toBe(1);
    expect(await digestAt(dst, 'auth/private/app', '1.0.0')).toBe(images['1.0.0']!.manifest.digest);
    await expect(runSync(yaml(''), toDst('noauth'))).rejects.toThrow(/401|unauthori[sz]ed|credentials|authentication/i);
    const wrong = await runSync(yaml(`  credentials: { username: ${basic.username}, password: wrong }\n`), toDst('noauth'), { keepGoing: true });
    expect(wrong.failed).toBe(1);
  });
});

describe('sync config errors', () => {
  const cases: [string, string, RegExp][] = [
    ['unknown key', `reg.example:5000:\n  imagez:\n    app: []\n`, /unknown key "imagez"/],
    ['bad regex', `reg.example:5000:\n  images-by-tag-regex:\n    app: '^(1\\.['\n`, /images-by-tag-regex\.app/],
    ['bad semver', `reg.example:5000:\n  images-by-semver:\n    app: "not a range"\n`, /images-by-semver\.app: "not a range" is not a semver range/],
    ['tags not a list', `reg.example:5000:\n  images:\n    app: "1.0"\n`, /images\.app must be a list of tags/],
    ['repository with a tag', `reg.example:5000:\n  images:\n    app:1.0: []\n`, /"app:1.0" must be a repository without tag/],
    ['tls-verify not a boolean', `reg.example:5000:\n  tls-verify: "maybe"\n`, /tls-verify must be true or false/],
    ['credentials without password', `reg.example:5000:\n  credentials: { username: u }\n`, /credentials need username and password/],
    ['images as a list', `reg.example:5000:\n  images: [busybox]\n`, /images must be a map of repository names/],
    ['not YAML', `reg.example:5000:\n  images: [\n`, /not valid YAML/],
  ];
  for (const [what, yaml, message] of cases) {
    it(`${what}: the error names the file, the registry and the key`, async () => {
      const file = await config(yaml);
      const err = await loadSyncConfig(file).then(
        () => undefined,
        (e: unknown) => e as Error & { code?: string },
      );
      expect(err, 'expected an error').toBeDefined();
      expect(err!.code).toBe('INVALID_INPUT');
      expect(err!.message).toContain(file);
      if (what !== 'not YAML') expect(err!.message).toContain('reg.example:5000');
      expect(err!.message).toMatch(message);
    });
  }

  it('a missing file is named', async () => {
    await expect(loadSyncConfig(join(fixtures, 'nope.yaml'))).rejects.toThrow(/cannot read sync config .*nope\.yaml/);
  });
});
