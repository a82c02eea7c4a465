/** ImageMirror spec → engine inputs, layout directories on a real filesystem, and policy key paths from a Secret. */
import { mkdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { layoutDirectory } from '../../src/controllers/imagemirror-layout.js';
import { planMirror } from '../../src/controllers/imagemirror-plan.js';
import { selectTags } from '../../src/copy/sync.js';
import type { ImageMirrorSpec } from '../../src/k8s/api/imagemirror.js';
import { resolveKeyPaths } from '../../src/controllers/imagemirror-policy.js';
import { ReconcileError, StallingError } from '../../src/k8s/runtime/errors.js';
import { parsePolicy } from '../../src/policy/parse.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';

const temps = new TempDirs();
afterAll(() => temps.cleanup());

const reg = (repository: string) => ({ registry: { repository } });
const layout = (claimName: string, path?: string) => ({ layout: { claimName, ...(path ? { path } : {}) } });

async function thrown(p: Promise<unknown> | (() => unknown)): Promise<unknown> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    return err;
  }
  throw new Error('expected an error');
}

describe('planMirror', () => {
  const pick = (tags: ImageMirrorSpec['tags'], available: string[]) =>
    selectTags(
      { registry: 'r.example.com', repository: 'a', ...planMirror({ source: reg('r.example.com/a'), destination: reg('m.example.com/a'), tags }).selection },
      available,
    );
  const ATTACHMENTS = [`sha256-${'a'.repeat(64)}.sig`, `sha256-${'b'.repeat(64)}.att`, `sha256-${'c'.repeat(64)}.sbom`, `sha256-${'d'.repeat(64)}`];

  it('selects every tag but attachment tags when no selection is given', () => {
    const plan = planMirror({ source: reg('r.example.com/a'), destination: reg('m.example.com/a') });
    expect(pick(undefined, ['1.0', ...ATTACHMENTS])).toEqual(['1.0']);
    expect(plan.options.signatures).toBe('copy');
  });

  it('keeps the user’s allow and deny next to the attachment exclusion (full matches)', () => {
    expect(pick({ allow: '1\\..*', deny: '.*-rc' }, ['1.0', '1.1-rc', '2.0', 'x1.0', ...ATTACHMENTS])).toEqual(['1.0']);
    // An allow that would match attachment tags still does not select them.
    expect(pick({ allow: '.*sig|1.0' }, ['1.0', ...ATTACHMENTS])).toEqual(['1.0']);
  });

  it('refuses a regex RE2 cannot run (lookahead), naming the field and the user’s pattern, not a wrapper', () => {
    for (const [tags, field, pattern] of [
      [{ allow: '(?!rc).*' }, 'spec.tags.allow', '(?!rc).*'],
      [{ deny: '.*(?<=-rc)' }, 'spec.tags.deny', '.*(?<=-rc)'],
      [{ allow: '1.(' }, 'spec.tags.allow', '1.('],
    ] as const) {
      const err = (() => {
        try {
          planMirror({ source: reg('r.example.com/a'), destination: reg('m.example.com/a'), tags });
        } catch (e) {
          return e as StallingError;
        }
      })();
      expect(err).toBeInstanceOf(StallingError);
      expect(err!.reason).toBe('InvalidSpec');
      expect(err!.message).toContain(`${field}: "${pattern}" is not a valid RE2 regular expression`);
      expect(err!.message).not.toContain('sha256-');
    }
  });

  it('refuses an invalid tags.semver as InvalidSpec (the CLI refuses the same string)', () => {
    const err = (() => {
      try {
        planMirror({ source: reg('r.example.com/a'), destination: reg('m.example.com/a'), tags: { semver: '>=1.x.y.z <' } });
      } catch (e) {
        return e as StallingError;
      }
    })();
    expect(err).toBeInstanceOf(StallingError);
    expect(err!.reason).toBe('InvalidSpec');
    expect(err!.message).toContain('spec.tags.semver: ">=1.x.y.z <" is not a semver range');
  });

  it('passes spec.compression to the engine, and refuses it with a layout source', () => {
    expect(planMirror({ source: reg('r.example.com/a'), destination: reg('m.example.com/a'), compression: 'zstd:chunked' }).options.compression).toBe(
      'zstd:chunked',
    );
    expect(planMirror({ source: reg('r.example.com/a'), destination: reg('m.example.com/a') }).options.compression).toBeUndefined();
    expect(() => planMirror({ source: layout('usb', '/in'), destination: reg('m.example.com/a'), compression: 'zstd' })).toThrow(
      /spec.compression is not supported with a layout source/,
    );
  });

  it('maps signatures: remove and layout sides', () => {
    const plan = planMirror({ source: layout('usb', '/in'), destination: reg('m.example.com/a'), signatures: 'remove' });
    expect(plan.source).toEqual({ kind: 'layout', claimName: 'usb', path: '/in' });
    expect(plan.options.signatures).toBe('remove');
  });

  it('refuses layout to layout and prune with a layout source as InvalidSpec', () => {
    for (const [spec, msg] of [
      [{ source: layout('a'), destination: layout('b') }, 'both layouts'],
      [{ source: layout('a'), destination: reg('m.example.com/a'), prune: true }, 'spec.prune is not supported with a layout source'],
    ] as const) {
      const err = (() => {
        try {
          planMirror(spec);
        } catch (e) {
          return e;
        }
      })();
      expect(err).toBeInstanceOf(StallingError);
      expect((err as StallingError).reason).toBe('InvalidSpec');
      expect((err as Error).message).toContain(msg);
    }
  });
});

describe('layoutDirectory', () => {
  it('stalls when the controller has no --layout-root', async () => {
    const err = await thrown(layoutDirectory(undefined, 'ns', 'destination', { claimName: 'usb' }));
    expect(err).toBeInstanceOf(StallingError);
    expect((err as Error).message).toContain('started without --layout-root');
  });

  it('resolves <root>/<namespace>/<claim>/<path>, for a destination that does not exist yet', async () => {
    const root = await temps.make('root');
    await mkdir(join(root, 'ns', 'usb'), { recursive: true });
    expect(await layoutDirectory(root, 'ns', 'destination', { claimName: 'usb', path: '/a/b' })).toBe(join(root, 'ns', 'usb', 'a', 'b'));
    // Another namespace's volume of the same name is not this one's.
    const err = await thrown(layoutDirectory(root, 'other', 'destination', { claimName: 'usb' }));
    expect(err).toBeInstanceOf(ReconcileError);
    expect((err as ReconcileError).reason).toBe('LayoutNotFound');
  });

  it('wants a source to exist, and refuses ".." and symlinks out of the volume', async () => {
    const root = await temps.make('root2');
    await mkdir(join(root, 'ns', 'usb', 'in'), { recursive: true });
    await symlink(await temps.make('elsewhere'), join(root, 'ns', 'usb', 'out'));
    expect(await layoutDirectory(root, 'ns', 'source', { claimName: 'usb', path: 'in' })).toBe(join(root, 'ns', 'usb', 'in'));
    expect(((await thrown(layoutDirectory(root, 'ns', 'source', { claimName: 'usb', path: 'missing' }))) as ReconcileError).reason).toBe('LayoutNotFound');
    expect(((await thrown(layoutDirectory(root, 'ns', 'source', { claimName: 'usb', path: '../../x' }))) as Error).message).toContain('must not contain ".."');
    for (const side of ['source', 'destination'] as const) {
      const err = await thrown(layoutDirectory(root, 'ns', side, { claimName: 'usb', path: 'out/deeper' }));
      expect(err).toBeInstanceOf(StallingError);
      expect((err as Error).message).toContain('leads out of volume "usb"');
    }
  });
});

describe('resolveKeyPaths', () => {
  const b64 = (s: string) => Buffer.from(s).toString('base64');

  it('replaces key, rekor and Fulcio CA paths with the Secret keys they name', () => {
    const policy = parsePolicy(
      JSON.stringify({
        default: [{ type: 'reject' }],
        transports: {
          docker: {
            'r.example.com/a': [{ type: 'sigstoreSigned', keyPaths: ['k1.pub', 'k2.pub'], rekorPublicKeyPath: 'rekor.pub' }],
            'r.example.com/b': [
              { type: 'sigstoreSigned', fulcio: { caPath: 'ca.pem', oidcIssuer: 'https://i', subjectEmail: 'a@b' }, rekorPublicKeyData: b64('R') },
            ],
          },
        },
      }),
    );
    const out = resolveKeyPaths(policy, { 'k1.pub': b64('K1'), 'k2.pub': b64('K2'), 'rekor.pub': b64('REKOR'), 'ca.pem': b64('CA') }, 'Secret ns/p');
    const a = out.transports.docker!['r.example.com/a']![0]!;
    const b = out.transports.docker!['r.example.com/b']![0]!;
    expect(a).toMatchObject({ type: 'sigstoreSigned', keyDatas: [Buffer.from('K1'), Buffer.from('K2')], rekorPublicKeyData: Buffer.from('REKOR') });
    expect(a).not.toHaveProperty('keyPaths');
    expect(a).not.toHaveProperty('rekorPublicKeyPath');
    expect(b).toMatchObject({ fulcio: { caData: Buffer.from('CA'), oidcIssuer: 'https://i' } });
    expect((b as { fulcio: object }).fulcio).not.toHaveProperty('caPath');
  });

  it('refuses a path that is not a key of the Secret, listing the keys there are', () => {
    const policy = parsePolicy(JSON.stringify({ default: [{ type: 'sigstoreSigned', keyPath: '/etc/shadow' }] }));
    expect(() => resolveKeyPaths(policy, { 'policy.json': b64('{}') }, 'Secret ns/p')).toThrow(
      'default[0].keyPath: "/etc/shadow" is not a key of Secret ns/p (keys: policy.json)',
    );
  });
});
