/**
 * The `stevedore` command end to end: the compiled CLI in a child process against real registries
 * (anonymous, htpasswd basic auth, token auth), with skopeo as the independent reference.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OciLayout } from '../../src/oci/layout.js';
import { encodeManifest } from '../../src/oci/manifest.js';
import { makeIndex, makeRandomImage, type FixtureImage } from '../../hack/lib/harness/images.js';
import { startRegistry, type TestRegistry } from '../../hack/lib/harness/registry.js';
import { creds, skopeo } from '../harness/skopeo.js';
import { cleanupCli, cliTempDir, ensureBuilt, jsonLines, stevedore } from './stevedore.js';

let reg: TestRegistry;
let basic: TestRegistry;
let token: TestRegistry;
let image: FixtureImage;
let second: FixtureImage;
let work: string;

beforeAll(async () => {
  const started = Promise.all([
    startRegistry({ name: 'cli' }),
    startRegistry({ name: 'cli-basic', auth: 'basic' }),
    startRegistry({ name: 'cli-token', auth: 'token' }),
  ]);
  work = await cliTempDir('cli-work');
  const layout = join(work, 'layout');
  image = await makeRandomImage({ layers: 2, layerSize: 64 * 1024, layoutDir: layout, ref: 'one' });
  second = await makeRandomImage({ layers: 1, layerSize: 8 * 1024, layoutDir: layout, ref: 'two' });
  [reg, basic, token] = await Promise.all([started, ensureBuilt()]).then(([r]) => r);
  // The fixture everyone reads: app:1.0 (and a second tag) on the anonymous registry, by skopeo.
  for (const tag of ['1.0', '1.1']) {
    const r = await skopeo(['copy', '--dest-tls-verify=false', image.ociRef, `docker://${reg.host}/cli/app:${tag}`]);
    expect(r.code, r.stderr).toBe(0);
  }
});

afterAll(async () => {
  await Promise.all([reg?.stop(), basic?.stop(), token?.stop()]);
  await cleanupCli();
});

function errorLine(stderr: string): string | undefined {
  return stderr.split('\n').find((l) => l.startsWith('Error: '));
}

describe('stevedore: usage', () => {
  it("--help exits 0 and lists the verbs; a verb's --help too", async () => {
    const [top, copy] = await Promise.all([stevedore(['--help']), stevedore(['copy', '--help'])]);
    expect(top.code, top.stderr).toBe(0);
    for (const verb of ['inspect', 'copy', 'sync', 'list-tags', 'delete', 'login', 'logout']) expect(top.stdout).toContain(verb);
    expect(copy.code).toBe(0);
    expect(copy.stdout).toContain('--digestfile');
  });

  it('a malformed reference exits 125 with an Error line naming it', async () => {
    const [bad, noSlashes, unknown] = await Promise.all([
      stevedore(['inspect', `docker://${reg.host}/UPPER/case`]),
      stevedore(['inspect', `docker:${reg.host}/app`]),
      stevedore(['copy', 'nosuchtransport:/x', `docker://${reg.host}/x:1`]),
    ]);
    for (const r of [bad, noSlashes, unknown]) {
      expect(r.code).toBe(125);
      expect(r.stdout).toBe('');
    }
    expect(errorLine(bad.stderr)).toMatch(/invalid reference .*UPPER\/case/);
    expect(errorLine(noSlashes.stderr)).toMatch(/docker:\/\//);
    expect(errorLine(unknown.stderr)).toMatch(/nosuchtransport/);
  });

  it('an unknown flag is a usage error: 125', async () => {
    const r = await stevedore(['copy', '--no-such-flag', 'a', 'b']);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/unknown option/);
  });
});

describe('stevedore copy', () => {
  it('copies oci: to docker:// and writes the digest to --digestfile', async () => {
    const digestfile = join(work, 'digest');
    const r = await stevedore(['copy', '--progress', 'json', '--digestfile', digestfile, image.ociRef, `docker://${reg.host}/cli/copied:1`]);
    expect(r.code, r.stderr).toBe(0);
    expect(await readFile(digestfile, 'utf8')).toBe(image.manifest.digest);
    const result = jsonLines(r.stderr).find((l) => l.type === 'result');
    expect(result).toMatchObject({ digest: image.manifest.digest });
    const sk = await skopeo(['inspect', '--tls-verify=false', `docker://${reg.host}/cli/copied:1`]);
    expect(JSON.parse(sk.stdout).Digest).toBe(image.manifest.digest);
  });

  it('--progress json writes one JSON object per line, with blob events for every layer', async () => {
    const r = await stevedore(['copy', '--progress', 'json', second.ociRef, `docker://${reg.host}/cli/progress:1`]);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
    const events = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const blobs = events.filter((e) => e.type === 'blob');
    const layer = second.layers[0]!.digest;
    expect(blobs.some((e) => e.digest === layer && e.phase === 'start')).toBe(true);
    expect(blobs.some((e) => e.digest === layer && e.phase === 'done')).toBe(true);
    expect(blobs.every((e) => typeof e.time === 'string')).toBe(true);
    expect(events.some((e) => e.type === 'manifest')).toBe(true);
  });

  it('--dest-creds pushes to a basic-auth registry; wrong credentials exit 125 with an Error line', async () => {
    const ok = await stevedore(['copy', '-q', '--dest-creds', creds(basic), image.ociRef, `docker://${basic.host}/cli/app:1`]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stderr).toBe('');
    const sk = await skopeo(['inspect', '--tls-verify=false', '--creds', creds(basic), `docker://${basic.host}/cli/app:1`]);
    expect(JSON.parse(sk.stdout).Digest).toBe(image.manifest.digest);

    const [wrong, none] = await Promise.all([
      stevedore(['copy', '--dest-creds', `${basic.username}:wrong`, image.ociRef, `docker://${basic.host}/cli/app:2`]),
      stevedore(['copy', image.ociRef, `docker://${basic.host}/cli/app:3`]),
    ]);
    for (const r of [wrong, none]) {
      expect(r.code).toBe(125);
      expect(errorLine(r.stderr)).toMatch(/401|authenticat|unauthori[sz]ed|credentials/i);
      expect(errorLine(r.stderr)).toContain(basic.host);
    }
  });
});

describe('stevedore inspect, list-tags, delete', () => {
  it("inspect prints skopeo's fields with the same values skopeo reports", async () => {
    const ref = `docker://${reg.host}/cli/app:1.0`;
    const [ours, theirs] = await Promise.all([stevedore(['inspect', ref]), skopeo(['inspect', '--tls-verify=false', ref])]);
    expect(ours.code, ours.stderr).toBe(0);
    const a = JSON.parse(ours.stdout);
    const b = JSON.parse(theirs.stdout);
    for (const field of ['Name', 'Digest', 'Architecture', 'Os', 'Layers', 'Env', 'Labels', 'DockerVersion']) expect(a[field], field).toEqual(b[field]);
    // skopeo 1.9 predates LayersData; check it against the manifest instead.
    expect(a.LayersData).toEqual(image.layers.map((l) => ({ MIMEType: l.mediaType, Digest: l.digest, Size: l.size, Annotations: null })));
    expect([...a.RepoTags].sort()).toEqual([...b.RepoTags].sort());
    expect(a.RepoTags.sort()).toEqual(['1.0', '1.1']);
    expect(a.Name).toBe(`${reg.host}/cli/app`);
    expect(a.Digest).toBe(image.manifest.digest);
    expect(a.Layers).toEqual(image.layers.map((l) => l.digest));
    expect(a.Env).toEqual(image.config.config?.Env);
    expect(new Date(a.Created).toISOString()).toBe(new Date(b.Created).toISOString());
  });

  it('inspect --raw prints the manifest bytes exactly; --config the image config', async () => {
    const ref = `docker://${reg.host}/cli/app:1.0`;
    const [raw, skRaw, config, rawConfig] = await Promise.all([
      stevedore(['inspect', '--raw', ref]),
      skopeo(['inspect', '--raw', '--tls-verify=false', ref]),
      stevedore(['inspect', '--config', ref]),
      stevedore(['inspect', '--config', '--raw', ref]),
    ]);
    expect(raw.code, raw.stderr).toBe(0);
    expect(`sha256:${createHash('sha256').update(raw.stdout).digest('hex')}`).toBe(image.manifest.digest);
    expect(raw.stdout).toBe(skRaw.stdout);
    expect(raw.stdout).toBe(image.manifest.bytes.toString('utf8'));
    expect(config.code, config.stderr).toBe(0);
    expect(JSON.parse(config.stdout)).toEqual(image.config);
    expect(`sha256:${createHash('sha256').update(rawConfig.stdout).digest('hex')}`).toBe(image.configDescriptor.digest);
  });

  it('inspect --raw of a 600 KiB manifest prints all of it through a pipe', async () => {
    // Annotations make the manifest big; process.exit() must not cut a piped stdout short.
    const layout = await OciLayout.open(image.layoutDir);
    const doc = JSON.parse(image.manifest.bytes.toString('utf8'));
    doc.annotations = { 'test.stevedore/padding': 'p'.repeat(600 * 1024) };
    const big = encodeManifest(doc);
    await layout.writeBlobBytes(big.bytes, big.digest);
    await layout.setRef({ mediaType: big.mediaType, digest: big.digest, size: big.bytes.length }, 'big');
    const r = await stevedore(['inspect', '--raw', `oci:${image.layoutDir}:big`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.length).toBe(big.bytes.length);
    expect(`sha256:${createHash('sha256').update(r.stdout).digest('hex')}`).toBe(big.digest);
  });

  it("inspect of a multi-arch index describes one platform's image, and --raw prints the index", async () => {
    const dir = await cliTempDir('cli-index');
    const index = await makeIndex(dir, 'multi', ['linux/amd64', 'linux/arm64/v8'], { layers: 1, layerSize: 2048 });
    const push = await stevedore(['copy', '-q', '--all', index.ociRef, `docker://${reg.host}/cli/multi:1`]);
    expect(push.code, push.stderr).toBe(0);
    const ref = `docker://${reg.host}/cli/multi:1`;
    const [arm, theirs, raw] = await Promise.all([
      stevedore(['inspect', '--platform', 'linux/arm64/v8', ref]),
      skopeo(['inspect', '--tls-verify=false', '--override-arch', 'arm64', '--override-variant', 'v8', ref]),
      stevedore(['inspect', '--raw', ref]),
    ]);
    expect(arm.code, arm.stderr).toBe(0);
    const a = JSON.parse(arm.stdout);
    const b = JSON.parse(theirs.stdout);
    const armImage = index.images.find((i) => i.platform.architecture === 'arm64')!;
    expect(a.Digest).toBe(b.Digest);
    expect(a.Layers).toEqual(b.Layers);
    expect(a.Layers).toEqual(armImage.layers.map((l) => l.digest));
    expect(a.Architecture).toBe('arm64');
    expect(raw.stdout).toBe(index.index.bytes.toString('utf8'));
    const missing = await stevedore(['inspect', '--platform', 'linux/s390x', ref]);
    expect(missing.code).toBe(125);
    expect(errorLine(missing.stderr)).toMatch(/linux\/s390x/);
  });

  it('inspect of a tag that does not exist exits 125 and names it', async () => {
    const r = await stevedore(['inspect', `docker://${reg.host}/cli/app:nope`]);
    expect(r.code).toBe(125);
    expect(errorLine(r.stderr)).toMatch(/cli\/app.*nope|not found|unknown/i);
  });

  it('list-tags prints the repository and its tags, as skopeo does', async () => {
    const [ours, theirs] = await Promise.all([
      stevedore(['list-tags', `docker://${reg.host}/cli/app`]),
      skopeo(['list-tags', '--tls-verify=false', `docker://${reg.host}/cli/app`]),
    ]);
    expect(ours.code, ours.stderr).toBe(0);
    const a = JSON.parse(ours.stdout);
    const b = JSON.parse(theirs.stdout);
    expect(a.Repository).toBe(b.Repository);
    expect([...a.Tags].sort()).toEqual([...b.Tags].sort());
  });

  it('delete removes the image; then the tag is gone', async () => {
    const push = await skopeo(['copy', '--dest-tls-verify=false', second.ociRef, `docker://${reg.host}/cli/doomed:x`]);
    expect(push.code, push.stderr).toBe(0);
    const del = await stevedore(['delete', `docker://${reg.host}/cli/doomed:x`]);
    expect(del.code, del.stderr).toBe(0);
    expect(del.stderr).toContain(second.manifest.digest);
    const [inspect, tags] = await Promise.all([
      skopeo(['inspect', '--tls-verify=false', `docker://${reg.host}/cli/doomed:x`]),
      stevedore(['list-tags', `docker://${reg.host}/cli/doomed`]),
    ]);
    expect(inspect.code).not.toBe(0);
    if (tags.code === 0) expect(JSON.parse(tags.stdout).Tags).not.toContain('x');
    const again = await stevedore(['delete', `docker://${reg.host}/cli/doomed:x`]);
    expect(again.code).toBe(125);
    expect(errorLine(again.stderr)).toMatch(/does not exist/);
  });
});

describe('stevedore login and logout', () => {
  for (const kind of ['basic', 'token'] as const) {
    it(`login --password-stdin to a ${kind} registry stores credentials that copy then uses`, async () => {
      const r = kind === 'basic' ? basic : token;
      const authfile = join(await cliTempDir(`auth-${kind}`), 'auth.json');
      const bad = await stevedore(['login', '--authfile', authfile, '-u', r.username!, '--password-stdin', r.host], { input: 'not-the-password\n' });
      expect(bad.code).toBe(125);
      expect(errorLine(bad.stderr)).toBeDefined();
      expect(existsSync(authfile)).toBe(false);

      const login = await stevedore(['login', '--authfile', authfile, '-u', r.username!, '--password-stdin', r.host], { input: `${r.password}\n` });
      expect(login.code, login.stderr).toBe(0);
      expect(login.stderr).toMatch(/Login Succeeded/);
      const doc = JSON.parse(await readFile(authfile, 'utf8'));
      expect(Buffer.from(doc.auths[r.host].auth, 'base64').toString()).toBe(`${r.username}:${r.password}`);
      expect((await stat(authfile)).mode & 0o777).toBe(0o600);

      const copy = await stevedore(['copy', '--authfile', authfile, second.ociRef, `docker://${r.host}/cli/login:1`]);
      expect(copy.code, copy.stderr).toBe(0);
      const read = await stevedore(['inspect', '--authfile', authfile, `docker://${r.host}/cli/login:1`]);
      expect(read.code, read.stderr).toBe(0);
      expect(JSON.parse(read.stdout).Digest).toBe(second.manifest.digest);

      // A wrong password later leaves the stored login untouched.
      const before = await readFile(authfile, 'utf8');
      const bad2 = await stevedore(['login', '--authfile', authfile, '-u', r.username!, '--password-stdin', r.host], { input: 'wrong' });
      expect(bad2.code).toBe(125);
      expect(await readFile(authfile, 'utf8')).toBe(before);
    });
  }

  it('login writes $REGISTRY_AUTH_FILE by default; logout removes the entry, and a second logout fails', async () => {
    const authfile = join(await cliTempDir('auth-env'), 'auth.json');
    await writeFile(authfile, JSON.stringify({ auths: { 'other.example': { auth: Buffer.from('a:b').toString('base64') } } }));
    const env = { REGISTRY_AUTH_FILE: authfile };
    const login = await stevedore(['login', '-u', basic.username!, '--password-stdin', basic.host], { env, input: basic.password! });
    expect(login.code, login.stderr).toBe(0);
    let doc = JSON.parse(await readFile(authfile, 'utf8'));
    expect(Object.keys(doc.auths).sort()).toEqual([basic.host, 'other.example'].sort());

    // The stored login is found without --authfile.
    const read = await stevedore(['copy', '-q', second.ociRef, `docker://${basic.host}/cli/env:1`], { env });
    expect(read.code, read.stderr).toBe(0);

    const logout = await stevedore(['logout', basic.host], { env });
    expect(logout.code, logout.stderr).toBe(0);
    doc = JSON.parse(await readFile(authfile, 'utf8'));
    expect(Object.keys(doc.auths)).toEqual(['other.example']);
    const again = await stevedore(['logout', basic.host], { env });
    expect(again.code).toBe(125);
    expect(errorLine(again.stderr)).toMatch(/not logged into/);
    const nofile = join(await cliTempDir('auth-none'), 'auth.json');
    const nothing = await stevedore(['logout', '--authfile', nofile, basic.host]);
    expect(nothing.code).toBe(125);
    expect(existsSync(nofile)).toBe(false);
    const all = await stevedore(['logout', '--all'], { env });
    expect(all.code, all.stderr).toBe(0);
    expect(JSON.parse(await readFile(authfile, 'utf8')).auths).toEqual({});
  });
});

describe('stevedore sync', () => {
  it('--src yaml --dest docker copies, reports JSON lines, then skips on a rerun', async () => {
    const file = join(work, 'sync.yaml');
    await writeFile(file, `${reg.host}:\n  images:\n    cli/app: []\n  images-by-tag-regex:\n    cli/copied: ^1$\n`);
    const dest = await startRegistry({ name: 'cli-sync-dst' });
    try {
      const r = await stevedore(['sync', '--src', 'yaml', '--dest', 'docker', '-o', 'json', file, `${dest.host}/mirror`]);
      expect(r.code, r.stderr).toBe(0);
      const lines = r.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      const items = lines.filter((l) => 'action' in l);
      expect(items.map((i) => `${i.tag}:${i.action}`).sort()).toEqual(['1.0:copied', '1.1:copied', '1:copied']);
      expect(items.find((i) => i.tag === '1.0')).toMatchObject({
        source: `docker://${reg.host}/cli/app:1.0`,
        destination: `docker://${dest.host}/mirror/app:1.0`,
        digest: image.manifest.digest,
      });
      expect(lines.at(-1)).toEqual({ summary: { copied: 3, skipped: 0, failed: 0, pruned: 0 } });
      const sk = await skopeo(['inspect', '--tls-verify=false', `docker://${dest.host}/mirror/copied:1`]);
      expect(JSON.parse(sk.stdout).Digest).toBe(image.manifest.digest);

      const again = await stevedore(['sync', '--src', 'yaml', '--dest', 'docker', '-o', 'json', file, `${dest.host}/mirror`]);
      expect(again.code, again.stderr).toBe(0);
      expect(jsonLines(again.stdout).at(-1)).toEqual({ summary: { copied: 0, skipped: 3, failed: 0, pruned: 0 } });

      // Text output, --dry-run, and a failing image: exit 125 after reporting the others.
      await writeFile(file, `${reg.host}:\n  images:\n    cli/app: ["1.0", "missing"]\n`);
      const failing = await stevedore(['sync', '--src', 'yaml', '--dest', 'docker', '--keep-going', file, `${dest.host}/mirror`]);
      expect(failing.code).toBe(125);
      expect(failing.stdout).toMatch(/^skipped\s+docker:\/\/\S+cli\/app:1\.0 -> /m);
      expect(failing.stdout).toMatch(/^failed\s+\S+cli\/app:missing -> \S+: .*does not exist/m);
      expect(errorLine(failing.stderr)).toMatch(/1 image\(s\) failed/);
    } finally {
      await dest.stop();
    }
  });

  it('--src docker --dest oci mirrors one repository into a layout skopeo reads; --dry-run writes nothing', async () => {
    const dir = join(await cliTempDir('cli-sync-oci'), 'mirror');
    const dry = await stevedore(['sync', '--src', 'docker', '--dest', 'oci', '--dry-run', `docker://${reg.host}/cli/app`, dir]);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout.match(/^would-copy /gm)).toHaveLength(2);
    expect(existsSync(dir)).toBe(false);

    const r = await stevedore(['sync', '--src', 'docker', '--dest', 'oci', `${reg.host}/cli/app:1.0`, `oci:${dir}`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^copied\\s+docker://${reg.host}/cli/app:1\\.0 -> oci:${dir}/app:1\\.0 sha256:`, 'm'));
    expect(r.stderr).toMatch(/Sync: 1 copied, 0 unchanged, 0 failed, 0 pruned/);
    const sk = await skopeo(['inspect', `oci:${dir}/app:1.0`]);
    expect(sk.code, sk.stderr).toBe(0);
    expect(JSON.parse(sk.stdout).Digest).toBe(image.manifest.digest);
  });

  it('a bad YAML config exits 125 naming the file and the key', async () => {
    const file = join(work, 'bad.yaml');
    await writeFile(file, `${reg.host}:\n  images-by-semver:\n    cli/app: "garbage"\n`);
    const r = await stevedore(['sync', '--src', 'yaml', '--dest', 'docker', file, `${reg.host}/x`]);
    expect(r.code).toBe(125);
    expect(errorLine(r.stderr)).toContain(file);
    expect(errorLine(r.stderr)).toContain('images-by-semver.cli/app');
  });
});
