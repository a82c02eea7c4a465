/**
 * The GPG verbs end to end through the real CLI: `copy --sign-by`, `image sign`, `image trust
 * set|show`, with skopeo 1.9 and podman 4.3 reading what Stevedore wrote (lookaside layout,
 * policy.json) on a real registry.
 */
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeBusyboxImage, makeIndex, makeRandomImage, type FixtureImage } from '../../hack/lib/harness/images.js';
import { runCommand } from '../../hack/lib/harness/procs.js';
import { startRegistry, type TestRegistry } from '../../hack/lib/harness/registry.js';
import { makeGpgHome, type GpgHome } from '../sign/gpg-home.js';
import { cleanupCli, cliTempDir, stevedore } from './stevedore.js';

let reg: TestRegistry;
let home: GpgHome;
let dir: string;
let registriesDir: string;
let lookaside: string;
let image: FixtureImage;
let unsigned: FixtureImage;

beforeAll(async () => {
  [reg, home] = await Promise.all([startRegistry({ name: 'gpg-cli' }), makeGpgHome('cli-signer', { passphrase: 'secret words' })]);
  dir = await cliTempDir('gpg-cli');
  registriesDir = join(dir, 'registries.d');
  lookaside = join(dir, 'lookaside');
  await mkdir(registriesDir);
  await writeFile(
    join(registriesDir, 'local.yaml'),
    `docker:\n  ${reg.host}:\n    lookaside: file://${lookaside}\n    lookaside-staging: file://${lookaside}\n`,
  );
  await writeFile(join(dir, 'pass'), 'secret words\n');
  image = await makeRandomImage({ layers: 1, layerSize: 2048, layoutDir: join(dir, 'img'), ref: 'a' });
  unsigned = await makeRandomImage({ layers: 1, layerSize: 2048, layoutDir: join(dir, 'img'), ref: 'b' });
  const r = await stevedore(['copy', '-q', unsigned.ociRef, `docker://${reg.host}/team/unsigned:1`]);
  expect(r.code, r.stderr).toBe(0);
}, 180_000);

afterAll(async () => {
  await reg?.stop();
  await home?.remove();
  await cleanupCli();
});

const policyFor = async (name: string, scope: string) => {
  const path = join(dir, `${name}.json`);
  await writeFile(
    path,
    JSON.stringify({
      default: [{ type: 'reject' }],
      transports: { docker: { [scope]: [{ type: 'signedBy', keyType: 'GPGKeys', keyPath: home.armoredPublicKeyFile }] } },
    }),
  );
  return path;
};

describe('copy --sign-by, image sign, image trust', () => {
  it('copy --sign-by signs into lookaside-staging; skopeo copy --policy and stevedore copy --policy admit it, and refuse the unsigned image', async () => {
    const r = await stevedore(
      [
        'copy',
        '-q',
        '--sign-by',
        home.fingerprint,
        '--sign-passphrase-file',
        join(dir, 'pass'),
        '--registries.d',
        registriesDir,
        image.ociRef,
        `docker://${reg.host}/team/app:1`,
      ],
      { env: home.env },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(await readdir(join(lookaside, 'team', `app@${image.descriptor.digest.replace(':', '=')}`))).toEqual(['signature-1']);
    const policy = await policyFor('copy-policy', reg.host);
    const skopeo = (src: string, out: string) =>
      runCommand('skopeo', [
        '--policy',
        policy,
        '--registries.d',
        registriesDir,
        'copy',
        '--src-tls-verify=false',
        `docker://${reg.host}/${src}`,
        `dir:${join(dir, out)}`,
      ]);
    const ok = await skopeo('team/app:1', 'skopeo-ok');
    expect(ok.code, ok.stderr).toBe(0);
    const no = await skopeo('team/unsigned:1', 'skopeo-no');
    expect(no.code).not.toBe(0);
    const ours = await stevedore([
      'copy',
      '-q',
      '--policy',
      policy,
      '--registries.d',
      registriesDir,
      `docker://${reg.host}/team/app:1`,
      `oci:${join(dir, 'ours')}:ok`,
    ]);
    expect(ours.code, ours.stderr).toBe(0);
    const oursNo = await stevedore([
      'copy',
      '-q',
      '--policy',
      policy,
      '--registries.d',
      registriesDir,
      `docker://${reg.host}/team/unsigned:1`,
      `oci:${join(dir, 'ours')}:no`,
    ]);
    expect(oursNo.code).toBe(125);
    expect(oursNo.stderr).toMatch(/POLICY_DENIED/);
  });

  it('copy --sign-by refuses, before copying, a destination that cannot hold signatures or a key it cannot unlock', async () => {
    const toOci = await stevedore(
      ['copy', '-q', '--sign-by', home.fingerprint, '--sign-passphrase-file', join(dir, 'pass'), image.ociRef, `oci:${join(dir, 'never')}:x`],
      { env: home.env },
    );
    expect(toOci.code).toBe(125);
    expect(toOci.stderr).toMatch(/cannot store GPG signatures in oci:/);
    const noPass = await stevedore(
      ['copy', '-q', '--sign-by', home.fingerprint, '--registries.d', registriesDir, image.ociRef, `docker://${reg.host}/team/never:1`],
      { env: home.env },
    );
    expect(noPass.code).toBe(125);
    expect(noPass.stderr).toMatch(/KEY_INVALID/);
    const tags = await runCommand('skopeo', ['list-tags', '--tls-verify=false', `docker://${reg.host}/team/never`]);
    expect(tags.code).not.toBe(0); // the repository was never written
    await expect(readdir(join(dir, 'never'))).rejects.toThrow(/ENOENT/);
  });

  it('image sign --sign-by signs a registry image (lookaside-staging or --directory); the signature admits it under signedBy', async () => {
    const push = await stevedore(['copy', '-q', image.ociRef, `docker://${reg.host}/team/signed-later:2`]);
    expect(push.code, push.stderr).toBe(0);
    const r = await stevedore(
      [
        'image',
        'sign',
        '--sign-by',
        home.fingerprint,
        '--passphrase-file',
        join(dir, 'pass'),
        '--registries.d',
        registriesDir,
        `docker://${reg.host}/team/signed-later:2`,
      ],
      { env: home.env },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(`file://${lookaside}/team/signed-later@${image.descriptor.digest.replace(':', '=')}/signature-1`);
    const policy = await policyFor('sign-policy', `${reg.host}/team`);
    const v = await runCommand('skopeo', [
      '--policy',
      policy,
      '--registries.d',
      registriesDir,
      'copy',
      '--src-tls-verify=false',
      `docker://${reg.host}/team/signed-later:2`,
      `dir:${join(dir, 'later')}`,
    ]);
    expect(v.code, v.stderr).toBe(0);
    const other = join(dir, 'elsewhere');
    const d = await stevedore(
      ['image', 'sign', '--sign-by', home.fingerprint, '--passphrase-file', join(dir, 'pass'), '--directory', other, `${reg.host}/team/signed-later:2`],
      { env: home.env },
    );
    expect(d.code, d.stderr).toBe(0);
    expect(await readdir(join(other, 'team', `signed-later@${image.descriptor.digest.replace(':', '=')}`))).toEqual(['signature-1']);
  });

  it('image sign --all signs an index and every manifest it lists', async () => {
    const idx = await makeIndex(join(dir, 'idx'), 'multi', ['linux/amd64', 'linux/arm64']);
    expect((await stevedore(['copy', '-q', '--all', `oci:${join(dir, 'idx')}:multi`, `docker://${reg.host}/team/multi:1`])).code).toBe(0);
    const out = join(dir, 'idx-sigs');
    const r = await stevedore(
      [
        'image',
        'sign',
        '--all',
        '--sign-by',
        home.fingerprint,
        '--passphrase-file',
        join(dir, 'pass'),
        '--directory',
        out,
        `docker://${reg.host}/team/multi:1`,
      ],
      { env: home.env },
    );
    expect(r.code, r.stderr).toBe(0);
    const digests = [idx.descriptor.digest, ...idx.images.map((i) => i.descriptor.digest)];
    expect(r.stdout.trim().split('\n')).toEqual(digests.map((d) => `file://${out}/team/multi@${d.replace(':', '=')}/signature-1`));
    // A platform manifest pulled by digest is accepted on its own signature.
    const policy = await policyFor('index-policy', `${reg.host}/team`);
    const child = await runCommand('skopeo', [
      '--policy',
      policy,
      '--registries.d',
      await (async () => {
        const d = join(dir, 'idx-registries.d');
        await mkdir(d, { recursive: true });
        await writeFile(join(d, 'x.yaml'), `default-docker:\n  lookaside: file://${out}\n`);
        return d;
      })(),
      'copy',
      '--src-tls-verify=false',
      `docker://${reg.host}/team/multi@${digests[1]}`,
      `dir:${join(dir, 'idx-child')}`,
    ]);
    expect(child.code, child.stderr).toBe(0);
  });

  it('image trust set writes policy.json as podman does and trust show prints it (podman reads the same file the same way)', async () => {
    const policy = join(dir, 'trust-policy.json');
    const set = (...args: string[]) => stevedore(['image', 'trust', 'set', '--policypath', policy, ...args]);
    expect((await set('--type', 'reject', 'default')).code).toBe(0);
    expect((await set('--type', 'signedBy', '--pubkeysfile', home.armoredPublicKeyFile, `${reg.host}/team`)).code).toBe(0);
    expect((await set('-t', 'accept', 'docker.io')).code).toBe(0);
    const bad = await set('--type', 'accept', '--pubkeysfile', home.armoredPublicKeyFile, 'quay.io');
    expect(bad.code).toBe(125);
    expect(bad.stderr).toMatch(/cannot be used with type accept/);
    const noKey = await set('--type', 'signedBy', 'quay.io');
    expect(noKey.stderr).toMatch(/needs at least one --pubkeysfile/);
    const badScope = await set('--type', 'reject', 'https://quay.io/x');
    expect(badScope.code).toBe(125);
    expect(badScope.stderr).toMatch(/is not a registry, repository or "default"/);
    expect((await set('--type', 'reject', '*.example.com')).code).toBe(0);
    expect((await set('--type', 'accept', '*.example.com')).code).toBe(0);
    expect(JSON.parse(await readFile(policy, 'utf8'))).toEqual({
      default: [{ type: 'reject' }],
      transports: {
        docker: {
          [`${reg.host}/team`]: [{ type: 'signedBy', keyType: 'GPGKeys', keyPath: home.armoredPublicKeyFile }],
          'docker.io': [{ type: 'insecureAcceptAnything' }],
          '*.example.com': [{ type: 'insecureAcceptAnything' }],
        },
      },
    });
    // podman image trust set on the same file gives the same document (one key).
    const podmanFile = join(dir, 'podman-policy.json');
    await writeFile(podmanFile, JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
    for (const args of [
      ['-t', 'reject', 'default'],
      ['-t', 'signedBy', '-f', home.armoredPublicKeyFile, `${reg.host}/team`],
      ['-t', 'accept', 'docker.io'],
    ]) {
      const p = await runCommand('podman', ['image', 'trust', 'set', '--policypath', podmanFile, ...args]);
      expect(p.code, p.stderr).toBe(0);
    }
    // podman 4.3 refuses a "*." wildcard scope (containers/image accepts it in policy.json; so do we).
    const ourDoc = JSON.parse(await readFile(policy, 'utf8')) as { transports: { docker: Record<string, unknown> } };
    delete ourDoc.transports.docker['*.example.com'];
    expect(JSON.parse(await readFile(podmanFile, 'utf8'))).toEqual(ourDoc);

    const show = await stevedore(['image', 'trust', 'show', '--policypath', policy, '--registrypath', registriesDir, '--json']);
    expect(show.code, show.stderr).toBe(0);
    const rows = JSON.parse(show.stdout) as Array<Record<string, unknown>>;
    expect(rows).toEqual([
      { transport: 'all', name: '* (default)', repo_name: 'default', type: 'reject' },
      { transport: 'repository', name: '*.example.com', repo_name: '*.example.com', type: 'accept' },
      {
        transport: 'repository',
        name: `${reg.host}/team`,
        repo_name: `${reg.host}/team`,
        type: 'signed',
        keys: [home.armoredPublicKeyFile],
        gpg_id: 'cli-signer <cli-signer@stevedore.test>',
        sigstore: `file://${lookaside}`,
      },
      { transport: 'repository', name: 'docker.io', repo_name: 'docker.io', type: 'accept' },
    ]);
    const podmanShow = await runCommand('podman', ['image', 'trust', 'show', '--policypath', policy, '--json']);
    expect(podmanShow.code, podmanShow.stderr).toBe(0);
    const pick = (rs: Array<Record<string, unknown>>) => rs.map((r) => [r.transport, r.name, r.repo_name, r.type]);
    expect(pick(rows)).toEqual(pick(JSON.parse(podmanShow.stdout) as Array<Record<string, unknown>>));
    const table = await stevedore(['image', 'trust', 'show', '--policypath', policy, '--registrypath', registriesDir]);
    expect(table.stdout.split('\n')[0]).toMatch(/^TRANSPORT\s+NAME\s+TYPE\s+ID\s+STORE$/);
    expect(table.stdout).toMatch(
      new RegExp(`repository\\s+${reg.host.replace(/\./g, '\\.')}/team\\s+signed\\s+cli-signer <cli-signer@stevedore.test>\\s+file://`),
    );

    // The edited policy is the gate: the signed image is admitted, the unsigned refused.
    const ok = await stevedore([
      'copy',
      '-q',
      '--policy',
      policy,
      '--registries.d',
      registriesDir,
      `docker://${reg.host}/team/app:1`,
      `oci:${join(dir, 'gate')}:ok`,
    ]);
    expect(ok.code, ok.stderr).toBe(0);
    const no = await stevedore([
      'copy',
      '-q',
      '--policy',
      policy,
      '--registries.d',
      registriesDir,
      `docker://${reg.host}/team/unsigned:1`,
      `oci:${join(dir, 'gate')}:no`,
    ]);
    expect(no.code).toBe(125);
  });

  it('run --policy with signedBy runs the signed image and refuses the unsigned or wrongly signed one (registries.d from ~/.config/containers)', async () => {
    const bb = await makeBusyboxImage(join(dir, 'bb'), 'latest');
    for (const tag of ['signed', 'unsigned', 'stranger'])
      expect((await stevedore(['copy', '-q', bb.ociRef, `docker://${reg.host}/team/bb:${tag}`])).code).toBe(0);
    const fakeHome = join(dir, 'home');
    await mkdir(join(fakeHome, '.config', 'containers', 'registries.d'), { recursive: true });
    await writeFile(join(fakeHome, '.config', 'containers', 'registries.d', 'sigs.yaml'), `default-docker:\n  lookaside: file://${join(dir, 'run-sigs')}\n`);
    const sign = (tag: string, h: GpgHome, pass: string[]) =>
      stevedore(['image', 'sign', '--sign-by', h.fingerprint, ...pass, '--directory', join(dir, 'run-sigs'), `${reg.host}/team/bb:${tag}`], { env: h.env });
    expect((await sign('signed', home, ['--passphrase-file', join(dir, 'pass')])).code).toBe(0);
    const stranger = await makeGpgHome('run-stranger');
    try {
      const s = await sign('stranger', stranger, []);
      expect(s.code, s.stderr).toBe(0);
    } finally {
      await stranger.remove();
    }
    const policy = await policyFor('run-policy', `${reg.host}/team`);
    const root = join(dir, 'store');
    const run = (name: string) =>
      stevedore(['run', '--rm', '--root', root, '--policy', policy, `${reg.host}/team/${name}`, 'echo', 'ran'], { env: { HOME: fakeHome } });
    const ran = await run('bb:signed');
    expect(ran.code, ran.stderr).toBe(0);
    expect(ran.stdout.trim()).toBe('ran');
    // The same digest under another tag: the signatures name bb:signed and bb:stranger, not this tag.
    const otherTag = await run('bb:unsigned');
    expect(otherTag.code).toBe(125);
    expect(otherTag.stderr).toMatch(/policy denied: .*does not match .*bb:unsigned under signedIdentity matchRepoDigestOrExact/);
    const unsigned = await run('unsigned:1');
    expect(unsigned.code).toBe(125);
    expect(unsigned.stderr).toMatch(/policy denied: .*no signature exists/);
    const wrong = await run('bb:stranger');
    expect(wrong.code).toBe(125);
    expect(wrong.stderr).toMatch(/policy denied: .*not among the trusted keys/);
  });

  it('trust set refuses to edit a policy file containers/image would refuse, and leaves it as it was', async () => {
    const policy = join(dir, 'broken.json');
    const text = '{"default":[{"type":"reject","extra":1}]}';
    await writeFile(policy, text);
    const r = await stevedore(['image', 'trust', 'set', '--policypath', policy, '-t', 'accept', 'default']);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/unknown field "extra"/);
    expect(await readFile(policy, 'utf8')).toBe(text);
  });
});
