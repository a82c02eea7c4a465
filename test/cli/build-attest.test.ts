/**
 * `stevedore build --sign-key --sbom --provenance` against a real registry: the pushed digest is
 * signed (our verify and the real cosign accept it), the SBOM and SLSA provenance are attached as
 * signed attestations (verify-attestation and cosign verify-attestation accept them), and the
 * result file lists every digest within the termination-message limit.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyReference } from '../../src/copy/copy.js';
import { parseImageName } from '../../src/transports/index.js';
import { makeBusyboxImage } from '../../hack/lib/harness/images.js';
import { runCommand } from '../../hack/lib/harness/procs.js';
import { startRegistry, type TestRegistry } from '../../hack/lib/harness/registry.js';
import { cosign } from '../sign/cosign.js';
import { cleanupCli, cliTempDir, jsonLines, stevedore } from './stevedore.js';

const PASSWORD = 'build-attest-pw';
let reg: TestRegistry;
let dir: string;
let ctx: string;
let keyPrefix: string;
let otherPrefix: string;
let base: string;
let containerfile: string;
let commit: string;

beforeAll(async () => {
  reg = await startRegistry({ name: 'build-attest' });
  dir = await cliTempDir('build-attest');
  const img = await makeBusyboxImage(join(dir, 'busybox'), 'latest');
  base = `${reg.host}/base/busybox:1`;
  await copyReference(parseImageName(img.ociRef), parseImageName(`docker://${base}`), { destContext: { tlsVerify: false } });
  keyPrefix = join(dir, 'cosign');
  otherPrefix = join(dir, 'other');
  for (const p of [keyPrefix, otherPrefix]) {
    const r = await stevedore(['generate-key', '--output-key-prefix', p], { env: { COSIGN_PASSWORD: PASSWORD } });
    expect(r.code, r.stderr).toBe(0);
  }
  // The context is a Git work tree: its HEAD is the commit the provenance records.
  ctx = join(dir, 'ctx');
  await mkdir(ctx);
  containerfile = `FROM ${base}\nARG GREETING\nCOPY hello.txt /hello.txt\nLABEL greeting=$GREETING\n`;
  await writeFile(join(ctx, 'Containerfile'), containerfile);
  await writeFile(join(ctx, 'hello.txt'), 'hello\n');
  const git = (args: string[]) => runCommand('git', ['-C', ctx, '-c', 'user.name=t', '-c', 'user.email=t@example.com', ...args]);
  for (const a of [
    ['init', '-q'],
    ['add', '.'],
    ['commit', '-q', '-m', 'context'],
  ])
    expect((await git(a)).code).toBe(0);
  commit = (await git(['rev-parse', 'HEAD'])).stdout.trim();
}, 180_000);

afterAll(async () => {
  await reg?.stop();
  await cleanupCli();
});

const noTls = ['--tls-verify=false'];

describe('stevedore build --sign-key --sbom --provenance', () => {
  it('signs the pushed digest and attaches a signed SBOM and SLSA provenance, listing their digests in the result file', async () => {
    const image = `${reg.host}/app/signed:1`;
    const resultFile = join(dir, 'result.json');
    const r = await stevedore(
      [
        'build',
        '-t',
        image,
        ...noTls,
        '--build-arg',
        'GREETING=hi',
        '--result-file',
        resultFile,
        '--sign-key',
        `${keyPrefix}.key`,
        '--sbom',
        'spdx-json',
        '--provenance',
        '--source-uri',
        'git+https://git.example.com/org/app.git',
        ctx,
      ],
      { env: { COSIGN_PASSWORD: PASSWORD } },
    );
    expect(r.code, r.stderr).toBe(0);
    const digest = r.stdout.trim();
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);

    const text = await readFile(resultFile, 'utf8');
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(4096);
    const result = JSON.parse(text) as {
      digest: string;
      signatureDigest: string;
      attestations: { kind: string; predicateType: string; digest: string; subject: string; envelope: string }[];
    };
    expect(result.digest).toBe(digest);
    expect(result.signatureDigest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(result.attestations.map((a) => [a.kind, a.predicateType, a.subject])).toEqual([
      ['sbom', 'https://spdx.dev/Document', digest],
      ['provenance', 'https://slsa.dev/provenance/v1', digest],
    ]);
    // The listed digests are the manifests in the registry.
    const sigTag = `sha256-${digest.slice(7)}.sig`;
    const head = await fetch(`${reg.url}/v2/app/signed/manifests/${sigTag}`, {
      method: 'HEAD',
      headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
    });
    expect(head.headers.get('docker-content-digest')).toBe(result.signatureDigest);
    for (const a of result.attestations) {
      const m = await fetch(`${reg.url}/v2/app/signed/manifests/${a.digest}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
      expect(m.status).toBe(200);
      expect(((await m.json()) as { subject: { digest: string } }).subject.digest).toBe(digest);
    }
    // The CLI output names them too.
    expect(r.stderr).toContain(`Signed ${digest}: ${sigTag} ${result.signatureDigest}`);
    for (const a of result.attestations) expect(r.stderr).toContain(`Attached ${a.kind} (${a.predicateType}) to ${digest}: ${a.digest}`);

    // Our verify and the real cosign accept the signature with the public key; another key does not.
    const ours = await stevedore(['verify', '--key', `${keyPrefix}.pub`, ...noTls, `docker://${image}`]);
    expect(ours.code, ours.stderr).toBe(0);
    const wrong = await stevedore(['verify', '--key', `${otherPrefix}.pub`, ...noTls, `docker://${image}`]);
    expect(wrong.code).not.toBe(0);
    const c = await cosign(['verify', '--key', `${keyPrefix}.pub`, '--insecure-ignore-tlog', '--allow-insecure-registry', image]);
    expect(c.code, c.stderr).toBe(0);
    expect(JSON.parse(c.stdout)[0].critical.image['docker-manifest-digest']).toBe(digest);

    // The SBOM and the provenance verify as attestations.
    const sbom = await stevedore(['verify-attestation', '--key', `${keyPrefix}.pub`, '--type', 'spdx', ...noTls, `docker://${image}`]);
    expect(sbom.code, sbom.stderr).toBe(0);
    const sbomStatement = jsonLines(sbom.stdout)[0]!.statement as { predicate: { spdxVersion: string } };
    expect(sbomStatement.predicate.spdxVersion).toBe('SPDX-2.3');
    const prov = await stevedore(['verify-attestation', '--key', `${keyPrefix}.pub`, '--type', 'slsaprovenance', ...noTls, `docker://${image}`]);
    expect(prov.code, prov.stderr).toBe(0);
    const statement = jsonLines(prov.stdout)[0]!.statement as {
      subject: { name: string; digest: { sha256: string } }[];
      predicate: {
        buildDefinition: {
          externalParameters: Record<string, unknown>;
          resolvedDependencies: { uri?: string; name?: string; digest: Record<string, string> }[];
        };
        runDetails: { builder: { version: Record<string, string> } };
      };
    };
    expect(statement.subject[0]).toEqual({ name: `${reg.host}/app/signed`, digest: { sha256: digest.slice(7) } });
    const cfDigest = createHash('sha256').update(containerfile).digest('hex');
    expect(statement.predicate.buildDefinition.externalParameters).toMatchObject({
      source: { uri: 'git+https://git.example.com/org/app.git', digest: { gitCommit: commit } },
      containerfile: { path: 'Containerfile', digest: { sha256: cfDigest } },
      buildArgs: { GREETING: 'hi' },
    });
    expect(statement.predicate.buildDefinition.resolvedDependencies).toContainEqual({
      uri: 'git+https://git.example.com/org/app.git',
      digest: { gitCommit: commit },
    });
    expect(statement.predicate.runDetails.builder.version.stevedore).toMatch(/^\d+\.\d+\.\d+/);
    const cp = await cosign([
      'verify-attestation',
      '--key',
      `${keyPrefix}.pub`,
      '--type',
      'slsaprovenance1',
      '--insecure-ignore-tlog=true',
      '--allow-insecure-registry',
      image,
    ]);
    expect(cp.code, cp.stderr).toBe(0);
  }, 240_000);

  it('signs only (no attestations) when given just a key, reading the encrypted key password from --sign-password-file', async () => {
    const image = `${reg.host}/app/sign-only:1`;
    await writeFile(join(dir, 'pw'), `${PASSWORD}\n`);
    const resultFile = join(dir, 'sign-only.json');
    const r = await stevedore(
      ['build', '-t', image, ...noTls, '--result-file', resultFile, '--sign-key', `${keyPrefix}.key`, '--sign-password-file', join(dir, 'pw'), ctx],
      {
        env: { COSIGN_PASSWORD: undefined },
      },
    );
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(await readFile(resultFile, 'utf8')) as { signatureDigest: string; attestations: unknown[] };
    expect(result.signatureDigest).toMatch(/^sha256:/);
    expect(result.attestations).toEqual([]);
    const c = await cosign(['verify', '--key', `${keyPrefix}.pub`, '--insecure-ignore-tlog', '--allow-insecure-registry', image]);
    expect(c.code, c.stderr).toBe(0);
  }, 120_000);

  it("signs an index, attaches the SBOM to the first platform's image and the provenance to the index", async () => {
    const multi = join(dir, 'multi');
    await mkdir(multi);
    await writeFile(join(multi, 'Containerfile'), 'FROM scratch\nCOPY hello.txt /hello.txt\n');
    await writeFile(join(multi, 'hello.txt'), 'hi\n');
    const image = `${reg.host}/app/multi:1`;
    const resultFile = join(dir, 'multi.json');
    const r = await stevedore(
      [
        'build',
        '-t',
        image,
        ...noTls,
        '--platform',
        'linux/arm64,linux/amd64',
        '--result-file',
        resultFile,
        '--sign-key',
        `${keyPrefix}.key`,
        '--sbom',
        'cyclonedx-json',
        '--provenance',
        multi,
      ],
      {
        env: { COSIGN_PASSWORD: PASSWORD },
      },
    );
    expect(r.code, r.stderr).toBe(0);
    const text = await readFile(resultFile, 'utf8');
    const result = JSON.parse(text) as { digest: string; platforms: { platform: string; digest: string }[]; attestations: { kind: string; subject: string }[] };
    expect(result.platforms.map((p) => p.platform)).toEqual(['linux/arm64/v8', 'linux/amd64']);
    expect(result.attestations).toMatchObject([
      { kind: 'sbom', predicateType: 'https://cyclonedx.org/bom', subject: result.platforms[0]!.digest },
      { kind: 'provenance', subject: result.digest },
    ]);
    const c = await cosign(['verify', '--key', `${keyPrefix}.pub`, '--insecure-ignore-tlog', '--allow-insecure-registry', image]);
    expect(c.code, c.stderr).toBe(0);
    expect(JSON.parse(c.stdout)[0].critical.image['docker-manifest-digest']).toBe(result.digest);
    // Provenance without --source-uri: no source, and the statement names the index.
    const prov = await stevedore(['verify-attestation', '--key', `${keyPrefix}.pub`, '--type', 'slsaprovenance', ...noTls, `docker://${image}`]);
    expect(prov.code, prov.stderr).toBe(0);
    const statement = jsonLines(prov.stdout)[0]!.statement as { predicate: { buildDefinition: { externalParameters: Record<string, unknown> } } };
    expect(statement.predicate.buildDefinition.externalParameters.source).toBeUndefined();
    expect(statement.predicate.buildDefinition.externalParameters.platforms).toEqual(['linux/arm64/v8', 'linux/amd64']);
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(4096);
  }, 120_000);

  it('refuses, before building, an SBOM without a key, a wrong password, a local-only destination and an unknown SBOM format', async () => {
    const image = `${reg.host}/app/refused:1`;
    const noKey = await stevedore(['build', '-t', image, ...noTls, '--sbom', 'spdx-json', ctx]);
    expect(noKey.code).toBe(125);
    expect(noKey.stderr).toContain('--sbom attaches a signed attestation: give --sign-key');
    const badPw = await stevedore(['build', '-t', image, ...noTls, '--sign-key', `${keyPrefix}.key`, ctx], { env: { COSIGN_PASSWORD: 'wrong' } });
    expect(badPw.code).toBe(125);
    expect(badPw.stderr).toMatch(/password/i);
    const local = await stevedore(['build', '-t', 'localonly:1', '--sign-key', `${keyPrefix}.key`, ctx], { env: { COSIGN_PASSWORD: PASSWORD } });
    expect(local.code).toBe(125);
    expect(local.stderr).toContain('need a registry destination');
    const fmt = await stevedore(['build', '-t', image, '--sign-key', `${keyPrefix}.key`, '--sbom', 'xml', ctx], { env: { COSIGN_PASSWORD: PASSWORD } });
    expect(fmt.code).toBe(125);
    expect(fmt.stderr).toContain('--sbom must be spdx-json or cyclonedx-json, got "xml"');
    // Nothing was built or pushed by any of them.
    const tags = await fetch(`${reg.url}/v2/app/refused/tags/list`);
    expect(tags.status).toBe(404);
    for (const res of [noKey, badPw, local, fmt]) expect(res.stderr).not.toContain('COMMIT');
  }, 120_000);
});
