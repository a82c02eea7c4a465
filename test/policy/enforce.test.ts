/**
 * containers-policy.json enforced on real registries: evaluatePolicy with sigstoreSigned on images
 * stevedore and cosign signed, `copy --policy` / `sync --policy` / `run --policy` refusing before
 * anything is written or run, indexes judged per platform, and copy/sync carrying signatures,
 * attachments and referrers (or dropping them with --remove-signatures).
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyReference } from '../../src/copy/copy.js';
import { sync } from '../../src/copy/sync.js';
import { parseSyncConfig } from '../../src/copy/sync-config.js';
import type { Digest } from '../../src/oci/digest.js';
import { parseReference } from '../../src/oci/reference.js';
import { evaluatePolicy } from '../../src/policy/image-policy.js';
import { parsePolicy } from '../../src/policy/parse.js';
import { RegistryClient } from '../../src/registry/client.js';
import { headManifest } from '../../src/registry/manifests.js';
import { referrersTag } from '../../src/registry/referrers.js';
import { generateKeyPair, loadPrivateKey } from '../../src/sign/keys.js';
import { signImage } from '../../src/sign/sign.js';
import { parseImageName } from '../../src/transports/index.js';
import { makeBusyboxImage, makeIndex, makeRandomImage, type FixtureImage, type FixtureIndex } from '../../hack/lib/harness/images.js';
import { startRegistry, type TestRegistry } from '../../hack/lib/harness/registry.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';
import { cleanupCli, stevedore } from '../cli/stevedore.js';
import { cosign, crane } from '../sign/cosign.js';

const temps = new TempDirs();
let reg: TestRegistry;
let client: RegistryClient;
let dir: string;
let image: FixtureImage;
let index: FixtureIndex;
/** A second index with other content (another digest): only its amd64 manifest gets signed. */
let partlySigned: FixtureIndex;
const pub = { a: '', b: '' };
let keyA: Awaited<ReturnType<typeof loadPrivateKey>>;
let keyB: Awaited<ReturnType<typeof loadPrivateKey>>;

const ref = (s: string) => `${reg.host}/${s}`;
const push = (src: string, dest: string) => copyReference(parseImageName(src), parseImageName(`docker://${ref(dest)}`), { all: true });
const sign = (s: string, key = keyA, formats?: Array<'simple' | 'bundle'>) => signImage(parseReference(ref(s)), key, { formats });

async function writePolicy(name: string, doc: unknown): Promise<string> {
  const path = join(dir, `${name}.json`);
  await writeFile(path, JSON.stringify(doc));
  return path;
}

const head = (repo: string, reference: string) => headManifest(client, repo, reference);

beforeAll(async () => {
  reg = await startRegistry({ name: 'policy' });
  client = new RegistryClient({ registry: reg.host });
  dir = await temps.make('policy');
  for (const k of ['a', 'b'] as const) {
    const pair = generateKeyPair('pw');
    await writeFile(join(dir, `${k}.key`), pair.privatePem);
    await writeFile(join(dir, `${k}.pub`), pair.publicPem);
    pub[k] = join(dir, `${k}.pub`);
  }
  keyA = await loadPrivateKey(join(dir, 'a.key'), 'pw');
  keyB = await loadPrivateKey(join(dir, 'b.key'), 'pw');
  image = await makeRandomImage({ layers: 2, layerSize: 32 * 1024, layoutDir: await temps.make('img') });
  index = await makeIndex(await temps.make('idx'), 'multi', ['linux/amd64', 'linux/arm64'], { layers: 1, layerSize: 8 * 1024 });
  partlySigned = await makeIndex(await temps.make('idx2'), 'multi', ['linux/amd64', 'linux/arm64'], { layers: 1, layerSize: 4 * 1024 });
  await push(image.ociRef, 'app:signed');
  await push(image.ociRef, 'app:unsigned-tag');
  await sign('app:signed');
  const other = await makeRandomImage({ layers: 1, layerSize: 4096, layoutDir: await temps.make('img3') });
  await push(other.ociRef, 'app:unsigned');
});

afterAll(async () => {
  await client?.close();
  await reg?.stop();
  await cleanupCli();
  await temps.cleanup();
});

describe('sigstoreSigned on a real registry', () => {
  it('accepts an image signed by the policy key under the default matchRepoDigestOrExact, and refuses what is not', async () => {
    const policy = parsePolicy(
      JSON.stringify({ default: [{ type: 'reject' }], transports: { docker: { [ref('app')]: [{ type: 'sigstoreSigned', keyPath: pub.a }] } } }),
    );
    const ok = await evaluatePolicy(policy, ref('app:signed'));
    expect(ok).toMatchObject({ allowed: true, digest: image.manifest.digest, scope: `docker:${ref('app')}` });
    const unsigned = await evaluatePolicy(policy, ref('app:unsigned'));
    expect(unsigned.allowed).toBe(false);
    expect(unsigned.reason).toContain('a signature was required, but no signature exists');
    // Same digest, another tag: the signature names app:signed, and matchRepoDigestOrExact wants the exact tag...
    const otherTag = await evaluatePolicy(policy, ref('app:unsigned-tag'));
    expect(otherTag.allowed).toBe(false);
    expect(otherTag.reason).toContain(
      `signature identity "${ref('app:signed')}" does not match ${ref('app:unsigned-tag')} under signedIdentity matchRepoDigestOrExact`,
    );
    // ...while by digest the repository is enough.
    expect((await evaluatePolicy(policy, ref(`app@${image.manifest.digest}`))).allowed).toBe(true);
    expect((await evaluatePolicy(policy, ref('elsewhere:1'))).reason).toContain('rejected by policy');
  });

  it('refuses a signature by another key, and accepts it when keyPaths or keyData lists that key', async () => {
    const only = (req: object) => parsePolicy(JSON.stringify({ default: [{ type: 'sigstoreSigned', ...req }] }));
    const wrong = await evaluatePolicy(only({ keyPath: pub.b }), ref('app:signed'));
    expect(wrong.allowed).toBe(false);
    expect(wrong.reason).toContain('does not verify with the given public key');
    expect((await evaluatePolicy(only({ keyPaths: [pub.b, pub.a] }), ref('app:signed'))).allowed).toBe(true);
    const { readFile } = await import('node:fs/promises');
    expect((await evaluatePolicy(only({ keyData: (await readFile(pub.a)).toString('base64') }), ref('app:signed'))).allowed).toBe(true);
    const missing = await evaluatePolicy(only({ keyPath: join(dir, 'nope.pub') }), ref('app:signed'));
    expect(missing.reason).toContain("cannot load the policy's public key");
  });

  it("judges cosign's repository-only identity per matcher: refused by tag under matchRepoDigestOrExact, accepted under matchRepository", async () => {
    await push(image.ociRef, 'cosigned:1');
    const gen = await cosign(['generate-key-pair', '--output-key-prefix', join(dir, 'cosign')], { password: 'pw' });
    expect(gen.code, gen.stderr).toBe(0);
    const s = await cosign(['sign', '--key', join(dir, 'cosign.key'), '--tlog-upload=false', '--yes', ref(`cosigned@${image.manifest.digest}`)], {
      password: 'pw',
    });
    expect(s.code, s.stderr).toBe(0);
    const p = (signedIdentity: object) =>
      parsePolicy(JSON.stringify({ default: [{ type: 'sigstoreSigned', keyPath: join(dir, 'cosign.pub'), signedIdentity }] }));
    expect((await evaluatePolicy(p({ type: 'matchRepoDigestOrExact' }), ref('cosigned:1'))).allowed).toBe(false);
    expect((await evaluatePolicy(p({ type: 'matchRepository' }), ref('cosigned:1'))).allowed).toBe(true);
    expect((await evaluatePolicy(p({ type: 'exactRepository', dockerRepository: ref('cosigned') }), ref('cosigned:1'))).allowed).toBe(true);
    expect((await evaluatePolicy(p({ type: 'exactRepository', dockerRepository: ref('other') }), ref('cosigned:1'))).allowed).toBe(false);
  });

  it('an index is accepted when signed itself, or when every platform manifest is; otherwise the refused platform is named', async () => {
    await push(index.ociRef, 'multi:signed');
    await push(partlySigned.ociRef, 'multi:children');
    await sign('multi:signed');
    const arm = partlySigned.images.find((i) => i.platform.architecture === 'arm64')!;
    const amd = partlySigned.images.find((i) => i.platform.architecture === 'amd64')!;
    await sign(`multi@${amd.manifest.digest}`);
    const policy = parsePolicy(JSON.stringify({ default: [{ type: 'sigstoreSigned', keyPath: pub.a, signedIdentity: { type: 'matchRepository' } }] }));
    expect((await evaluatePolicy(policy, ref('multi:signed'))).allowed).toBe(true);
    const partial = await evaluatePolicy(policy, ref('multi:children'));
    expect(partial.allowed).toBe(false);
    expect(partial.reason).toContain('linux/arm64');
    expect(partial.manifests?.find((m) => m.digest === arm.manifest.digest)?.allowed).toBe(false);
    // Only the signed platform will be used: accepted.
    expect((await evaluatePolicy(policy, ref('multi:children'), { platforms: [amd.platform] })).allowed).toBe(true);
  });
});

describe('copy, sync and run --policy', () => {
  let policyFile: string;
  beforeAll(async () => {
    policyFile = await writePolicy('app', {
      default: [{ type: 'insecureAcceptAnything' }],
      transports: { docker: { [ref('app')]: [{ type: 'sigstoreSigned', keyPath: pub.a, signedIdentity: { type: 'matchRepository' } }] } },
    });
  });

  it('copy refuses an unsigned image before writing anything at the destination', async () => {
    const r = await stevedore(['copy', '--policy', policyFile, `docker://${ref('app:unsigned')}`, `docker://${ref('refused/app:1')}`]);
    expect(r.code).toBe(125);
    expect(r.stderr).toContain('policy denied');
    expect(r.stderr).toContain('no signature exists');
    expect(r.stderr).toContain('[POLICY_DENIED]');
    const tags = await fetch(`${reg.url}/v2/refused/app/tags/list`);
    expect(tags.status).toBe(404);
  });

  it('copy of a signed image carries its signature, which still verifies at the destination', async () => {
    const r = await stevedore(['copy', '--policy', policyFile, `docker://${ref('app:signed')}`, `docker://${ref('mirror/app:signed')}`]);
    expect(r.code, r.stderr).toBe(0);
    expect(await head('mirror/app', `${referrersTag(image.manifest.digest)}.sig`)).toBeDefined();
    const v = await stevedore(['verify', '--key', pub.a, '--signed-repository', ref('app'), ref('mirror/app:signed')]);
    expect(v.code, v.stderr).toBe(0);
    // remapIdentity accepts the mirror's copy of the upstream's signature (the mirror's name is
    // rewritten to the upstream's, then compared); a prefix that does not cover it rewrites nothing.
    const remap = (prefix: string) =>
      parsePolicy(
        JSON.stringify({ default: [{ type: 'sigstoreSigned', keyPath: pub.a, signedIdentity: { type: 'remapIdentity', prefix, signedPrefix: reg.host } }] }),
      );
    expect((await evaluatePolicy(remap(ref('mirror')), ref('mirror/app:signed'))).allowed).toBe(true);
    expect((await evaluatePolicy(remap(ref('mirror')), ref(`mirror/app@${image.manifest.digest}`))).allowed).toBe(true);
    expect((await evaluatePolicy(remap(ref('elsewhere')), ref('mirror/app:signed'))).allowed).toBe(false);
  });

  it('copy carries .att/.sbom tags and bundle referrers, and --remove-signatures leaves all of them behind', async () => {
    await push(image.ociRef, 'attached:1');
    await sign('attached:1', keyB, ['simple', 'bundle']);
    const sbom = await makeRandomImage({ layers: 1, layerSize: 1024, layoutDir: await temps.make('sbom') });
    await push(sbom.ociRef, `attached:${referrersTag(image.manifest.digest)}.sbom`);
    const r = await stevedore(['copy', `docker://${ref('attached:1')}`, `docker://${ref('carried/attached:1')}`]);
    expect(r.code, r.stderr).toBe(0);
    for (const tag of ['.sig', '.sbom', ''].map((s) => `${referrersTag(image.manifest.digest)}${s}`)) {
      expect(await head('carried/attached', tag), tag).toBeDefined();
    }
    const v = await stevedore(['verify', '--format', 'bundle', '--key', pub.b, ref('carried/attached:1')]);
    expect(v.code, v.stderr).toBe(0);
    // An independent client sees the same tags at the destination.
    const ls = await crane(['ls', '--insecure', ref('carried/attached')]);
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout.split('\n').sort()).toEqual(
      expect.arrayContaining(['1', ...['.sig', '.sbom', ''].map((x) => `${referrersTag(image.manifest.digest)}${x}`)]),
    );
    const bare = await stevedore(['copy', '--remove-signatures', `docker://${ref('attached:1')}`, `docker://${ref('bare/attached:1')}`]);
    expect(bare.code, bare.stderr).toBe(0);
    expect(await head('bare/attached', '1')).toBeDefined();
    for (const tag of ['.sig', '.sbom', ''].map((s) => `${referrersTag(image.manifest.digest)}${s}`)) {
      expect(await head('bare/attached', tag), tag).toBeUndefined();
    }
  });

  it('copy --all of an index whose arm64 manifest is unsigned is refused; --platform of the signed one is copied', async () => {
    const p = await writePolicy('multi', { default: [{ type: 'sigstoreSigned', keyPath: pub.a, signedIdentity: { type: 'matchRepository' } }] });
    const all = await stevedore(['copy', '--all', '--policy', p, `docker://${ref('multi:children')}`, `docker://${ref('multi-copy:all')}`]);
    expect(all.code).toBe(125);
    expect(all.stderr).toContain('linux/arm64');
    expect(await head('multi-copy', 'all')).toBeUndefined();
    const one = await stevedore([
      'copy',
      '--platform',
      'linux/amd64',
      '--policy',
      p,
      `docker://${ref('multi:children')}`,
      `docker://${ref('multi-copy:amd64')}`,
    ]);
    expect(one.code, one.stderr).toBe(0);
    const amd = partlySigned.images.find((i) => i.platform.architecture === 'amd64')!;
    expect((await head('multi-copy', 'amd64'))?.digest).toBe(amd.manifest.digest);
    // The child's own signature travelled with it.
    expect(await head('multi-copy', `${referrersTag(amd.manifest.digest)}.sig`)).toBeDefined();
  });

  it('sync copies the accepted tags, fails the refused one with the reason, and writes nothing of it', async () => {
    const r = await stevedore([
      'sync',
      '--src',
      'docker',
      '--dest',
      'docker',
      '--keep-going',
      '--policy',
      policyFile,
      '-o',
      'json',
      ref('app'),
      `${reg.host}/synced`,
    ]);
    expect(r.code).toBe(125);
    const items = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { tag?: string; action?: string; error?: string });
    const byTag = new Map(items.filter((i) => i.tag).map((i) => [i.tag!, i]));
    expect(byTag.get('signed')?.action).toBe('copied');
    expect(byTag.get('unsigned')?.action).toBe('failed');
    expect(byTag.get('unsigned')?.error).toContain('policy denied');
    expect(await head('synced/app', 'unsigned')).toBeUndefined();
    expect(await head('synced/app', `${referrersTag(image.manifest.digest)}.sig`)).toBeDefined();
  });

  it("sync --prune keeps the signatures it carried for kept tags, and prunes a pruned image's signature with it", async () => {
    const kept = await makeRandomImage({ layers: 1, layerSize: 2048, layoutDir: await temps.make('prune-kept') });
    const gone = await makeRandomImage({ layers: 1, layerSize: 2048, layoutDir: await temps.make('prune-gone') });
    await push(kept.ociRef, 'pr/app:kept');
    await push(gone.ociRef, 'pr/app:gone');
    await sign('pr/app:kept');
    await sign('pr/app:gone');
    const target = { kind: 'registry' as const, registry: reg.host, prefix: 'prdest' };
    const all = await sync(parseSyncConfig({ [reg.host]: { 'tls-verify': false, images: { 'pr/app': [] } } }), target);
    expect(all.failed).toBe(0);
    const sigOf = (f: FixtureImage) => `${referrersTag(f.manifest.digest)}.sig`;
    expect(await head('prdest/pr/app', sigOf(gone))).toBeDefined();

    const report = await sync(parseSyncConfig({ [reg.host]: { 'tls-verify': false, images: { 'pr/app': ['kept'] } } }), target, { prune: true });
    const pruned = report.items
      .filter((i) => i.action === 'pruned')
      .map((i) => i.tag)
      .sort();
    expect(pruned).toEqual(['gone', sigOf(gone)].sort());
    expect(await head('prdest/pr/app', 'kept')).toBeDefined();
    expect(await head('prdest/pr/app', sigOf(kept))).toBeDefined();
    expect(await head('prdest/pr/app', 'gone')).toBeUndefined();
    expect(await head('prdest/pr/app', sigOf(gone))).toBeUndefined();
  });

  it('run refuses an image the policy does not accept, and runs one it does', async () => {
    const bb = await makeBusyboxImage(await temps.make('bb'), 'latest');
    await push(bb.ociRef, 'app:busybox-unsigned');
    await push(bb.ociRef, 'app:busybox');
    await sign('app:busybox');
    const root = await temps.make('store');
    // Default identity matcher: the signature (made for app:busybox) covers that tag only, though
    // both tags name the same digest.
    const strict = await writePolicy('run', {
      default: [{ type: 'reject' }],
      transports: { docker: { [ref('app')]: [{ type: 'sigstoreSigned', keyPath: pub.a }] } },
    });
    const refused = await stevedore(['run', '--rm', '--root', root, '--policy', strict, ref('app:busybox-unsigned'), 'true']);
    expect(refused.code).toBe(125);
    expect(refused.stderr).toContain('policy denied');
    expect(refused.stderr).toContain('does not match');
    const ran = await stevedore(['run', '--rm', '--root', root, '--policy', strict, ref('app:busybox'), 'echo', 'allowed']);
    expect(ran.code, ran.stderr).toBe(0);
    expect(ran.stdout.trim()).toBe('allowed');
  });

  it('a policy file with an unknown field stops the command before it touches a registry', async () => {
    const bad = await writePolicy('bad', { default: [{ type: 'insecureAcceptAnything' }], transport: {} });
    const r = await stevedore(['copy', '--policy', bad, `docker://${ref('app:signed')}`, `docker://${ref('never/app:1')}`]);
    expect(r.code).toBe(125);
    expect(r.stderr).toContain('unknown field "transport"');
    expect(await head('never/app', '1')).toBeUndefined();
  });
});

export type { Digest };
