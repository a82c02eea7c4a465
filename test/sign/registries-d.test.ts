import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseReference } from '../../src/oci/reference.js';
import { signatureDirURL } from '../../src/sign/lookaside.js';
import { loadRegistriesD, lookasideBase, lookasideForScope, useSigstoreAttachments } from '../../src/sign/registries-d.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';

const temps = new TempDirs();
afterAll(() => temps.cleanup());

async function dirWith(files: Record<string, string>): Promise<string> {
  const d = await temps.make('registries-d');
  for (const [name, text] of Object.entries(files)) await writeFile(join(d, name), text);
  return d;
}

describe('registries.d (containers-registries.d(5))', () => {
  it('picks the most specific scope: repository, namespace, host, *.domain, then default-docker; staging only for writing', async () => {
    const d = await dirWith({
      'a.yaml': 'default-docker:\n  lookaside: file:///default\n  lookaside-staging: file:///default-staging\n',
      'b.yaml': [
        'docker:',
        '  registry.example.com/team/app:',
        '    lookaside: https://sigs.example.com/app',
        '  registry.example.com/team:',
        '    sigstore: file:///team',
        '    use-sigstore-attachments: true',
        '  "*.example.com":',
        '    lookaside: file:///wild',
        '  other.example.org:',
        '    use-sigstore-attachments: false',
        '',
      ].join('\n'),
      'ignored.txt': 'not: [yaml',
    });
    const c = await loadRegistriesD(d);
    const at = (r: string, write = false) => lookasideBase(c, parseReference(r), write);
    expect(at('registry.example.com/team/app:1')).toBe('https://sigs.example.com/app');
    expect(at('registry.example.com/team/app:1', true)).toBe('https://sigs.example.com/app');
    expect(at('registry.example.com/team/other:1')).toBe('file:///team');
    expect(at('mirror.example.com/x/y:1')).toBe('file:///wild');
    expect(at('other.example.org/x:1')).toBe('file:///default');
    expect(at('other.example.org/x:1', true)).toBe('file:///default-staging');
    expect(useSigstoreAttachments(c, parseReference('registry.example.com/team/app:1'))).toBe(true);
    expect(useSigstoreAttachments(c, parseReference('other.example.org/x:1'))).toBe(false);
    expect(lookasideForScope(c, 'registry.example.com/team/sub')).toBe('file:///team');
    // The repository path without the registry host, as containers/image lays it out.
    expect(signatureDirURL('file:///sigs/', parseReference('registry.example.com/team/app:1'), `sha256:${'a'.repeat(64)}`)).toBe(
      `file:///sigs/team/app@sha256=${'a'.repeat(64)}`,
    );
  });

  it('a missing directory is an empty configuration (the built-in lookaside applies)', async () => {
    const c = await loadRegistriesD(join(await temps.make('none'), 'missing'));
    expect(lookasideBase(c, parseReference('r.example/a:1'), false)).toMatch(/^file:\/\/.*sigstore$/);
  });

  it('refuses unknown fields, both old and new names, a namespace in two files, other URL schemes and bad YAML, naming the file', async () => {
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ 'x.yaml': 'default-docker:\n  lookaside: file:///a\n  lookasid-staging: file:///b\n' }, /x\.yaml: default-docker: unknown field "lookasid-staging"/],
      [{ 'x.yaml': 'default-docker:\n  lookaside: file:///a\n  sigstore: file:///b\n' }, /both lookaside and its old name sigstore/],
      [
        { 'x.yaml': 'docker:\n  r.example: {lookaside: "file:///a"}\n', 'y.yaml': 'docker:\n  r.example: {lookaside: "file:///b"}\n' },
        /y\.yaml: docker namespace "r.example" is defined in more than one file/,
      ],
      [
        { 'x.yaml': 'default-docker: {lookaside: "file:///a"}\n', 'y.yaml': 'default-docker: {lookaside: "file:///b"}\n' },
        /default-docker is defined in more than one file/,
      ],
      [{ 'x.yaml': 'default-docker:\n  lookaside: ftp://host/sigs\n' }, /unsupported scheme/],
      [{ 'x.yaml': 'default-docker:\n  use-sigstore-attachments: yes please\n' }, /must be true or false/],
      [{ 'x.yaml': 'default-docker: {lookaside: file:///a}\ndefault-docker: {}\n' }, /x\.yaml: .*(unique|duplicate)/i],
      [{ 'x.yaml': 'privileged: true\n' }, /unknown field "privileged"/],
    ];
    for (const [files, re] of cases) {
      const d = await dirWith(files);
      await expect(loadRegistriesD(d)).rejects.toThrow(re);
    }
  });

  it('ignores a subdirectory that is not a .yaml file', async () => {
    const d = await dirWith({ 'a.yaml': 'default-docker:\n  lookaside: file:///a\n' });
    await mkdir(join(d, 'sub'));
    const c = await loadRegistriesD(d);
    expect(c.defaultDocker?.lookaside).toBe('file:///a');
  });
});
