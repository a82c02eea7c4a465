/** How a run's env and volumes are assembled from ConfigMaps and Secrets (sources stubbed: pure logic). */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigSourceError, type ConfigSources, type SourceKind } from '../../src/agent/config-sources.js';
import { resolveEnv } from '../../src/agent/env.js';
import { prepareVolumes, releaseVolumes } from '../../src/agent/volumes.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';

const temps = new TempDirs();
afterAll(() => temps.cleanup());

/** The same contract as ConfigSources over fixed objects. */
function sources(objects: Record<string, Record<string, string>>): ConfigSources {
  const keys = async (kind: SourceKind, name: string) => {
    const o = objects[`${kind}/${name}`];
    return o ? new Map(Object.entries(o).map(([k, v]) => [k, Buffer.from(v)])) : undefined;
  };
  const required = async (kind: SourceKind, name: string, optional?: boolean) => {
    const k = await keys(kind, name);
    if (k) return k;
    if (optional) return new Map<string, Buffer>();
    throw new ConfigSourceError(`${kind} ns/${name} not found`);
  };
  return {
    keys,
    required,
    async key(kind: SourceKind, name: string, key: string, optional?: boolean) {
      const v = (await required(kind, name, optional)).get(key);
      if (v !== undefined || optional) return v;
      throw new ConfigSourceError(`${kind} ns/${name} has no key "${key}"`);
    },
  } as unknown as ConfigSources;
}

const src = sources({ 'ConfigMap/cfg': { A: '1', B: '2', 'bad name': 'x' }, 'Secret/sec': { token: 't0k' } });

describe('env', () => {
  it('applies envFrom (with prefix, invalid names skipped) then env, which wins', async () => {
    const env = await resolveEnv(
      {
        image: 'x',
        envFrom: [{ configMapRef: { name: 'cfg' } }, { prefix: 'S_', secretRef: { name: 'sec' } }],
        env: [
          { name: 'A', value: 'override' },
          { name: 'T', valueFrom: { secretKeyRef: { name: 'sec', key: 'token' } } },
        ],
      },
      src,
    );
    expect(env).toEqual(['A=override', 'B=2', 'S_token=t0k', 'T=t0k']);
  });

  it('skips optional missing keys and objects, and names what is missing otherwise', async () => {
    const env = await resolveEnv(
      {
        image: 'x',
        env: [{ name: 'M', valueFrom: { configMapKeyRef: { name: 'nope', key: 'k', optional: true } } }],
        envFrom: [{ secretRef: { name: 'nope', optional: true } }],
      },
      src,
    );
    expect(env).toEqual([]);
    await expect(resolveEnv({ image: 'x', env: [{ name: 'M', valueFrom: { configMapKeyRef: { name: 'cfg', key: 'C' } } }] }, src)).rejects.toThrow(
      'ConfigMap ns/cfg has no key "C"',
    );
  });
});

describe('volumes', () => {
  it('writes configMap (0644) and secret (0400, owned by the run user mapped into its user namespace) keys on a tmpfs each, emptyDir as a writable dir, Memory as a tmpfs mount; releaseVolumes unmounts and removes them', async () => {
    const dir = await temps.make('vols');
    const idMap = { uidMappings: [{ containerID: 0, hostID: 200000, size: 65536 }], gidMappings: [{ containerID: 0, hostID: 300000, size: 65536 }] };
    const m = await prepareVolumes(
      {
        image: 'x',
        volumes: [
          { name: 'c', mountPath: '/etc/c', configMap: { name: 'cfg', items: [{ key: 'A', path: 'sub/a.txt' }] } },
          { name: 's', mountPath: '/s', secret: { secretName: 'sec' } },
          { name: 'e', mountPath: '/scratch', emptyDir: {} },
          { name: 'm', mountPath: '/mem', emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } },
        ],
      },
      dir,
      src,
      { idMap, user: '1000' },
    );
    try {
      expect(await readFile(join(dir, 'c', 'sub', 'a.txt'), 'utf8')).toBe('1');
      expect((await stat(join(dir, 'c', 'sub', 'a.txt'))).mode & 0o777).toBe(0o644);
      expect(await readFile(join(dir, 's', 'token'), 'utf8')).toBe('t0k');
      const secret = await stat(join(dir, 's', 'token'));
      expect(secret.mode & 0o777).toBe(0o400);
      expect([secret.uid, secret.gid]).toEqual([201000, 301000]);
      // Not on the node's disk: each projected volume is a tmpfs of its own.
      const mountinfo = await readFile('/proc/self/mountinfo', 'utf8');
      for (const v of ['c', 's']) expect(mountinfo).toMatch(new RegExp(` ${join(dir, v)} .* - tmpfs `));
      expect((await stat(join(dir, 'e'))).mode & 0o777).toBe(0o777);
      expect(m.binds).toEqual([
        { source: join(dir, 'c'), destination: '/etc/c', readonly: true, options: ['nosuid', 'nodev', 'noexec'] },
        { source: join(dir, 's'), destination: '/s', readonly: true, options: ['nosuid', 'nodev', 'noexec'] },
        { source: join(dir, 'e'), destination: '/scratch', readonly: false },
      ]);
      expect(m.tmpfs).toEqual([{ destination: '/mem', options: ['rw', 'nosuid', 'nodev', 'size=1048576'] }]);
    } finally {
      await releaseVolumes(dir);
    }
    expect(await readFile('/proc/self/mountinfo', 'utf8')).not.toContain(dir);
    await expect(stat(dir)).rejects.toThrow(/ENOENT/);
  });

  it('refuses mount paths that could inject mount options or leave the container path, as InvalidSpec', async () => {
    const dir = await temps.make('vols-bad');
    for (const mountPath of ['/a:b', '/a,size=1', '/a/../b', 'rel']) {
      const err = await prepareVolumes({ image: 'x', volumes: [{ name: 'e', mountPath, emptyDir: { medium: 'Memory' } }] }, dir, src).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConfigSourceError);
      expect((err as ConfigSourceError).reason).toBe('InvalidSpec');
    }
  });

  it('refuses a key path that leaves the volume', async () => {
    const dir = await temps.make('vols-escape');
    await expect(
      prepareVolumes(
        { image: 'x', volumes: [{ name: 'c', mountPath: '/c', configMap: { name: 'cfg', items: [{ key: 'A', path: 'x/../../escape' }] } }] },
        dir,
        src,
      ),
    ).rejects.toThrow(/path "x\/\.\.\/\.\.\/escape" leaves the volume/);
    await releaseVolumes(dir);
  });
});

describe('log tail', () => {
  it('reads the last 50 lines from the end of a big k8s-file log, joining partial records', async () => {
    const { K8sFileLog } = await import('../../src/runtime/logs.js');
    const { readLogTail } = await import('../../src/agent/log-tail.js');
    const dir = await temps.make('logtail');
    const log = new K8sFileLog(join(dir, 'ctr.log'));
    for (let i = 0; i < 40_000; i++) log.write('stdout', `line ${i} ${'.'.repeat(40)}\n`);
    log.write('stderr', `${'y'.repeat(20_000)}\n`); // a long line: P records then F
    log.write('stdout', 'last');
    await log.close();
    expect((await stat(join(dir, 'ctr.log'))).size).toBeGreaterThan(2 * 1024 * 1024);
    const tail = (await readLogTail(join(dir, 'ctr.log'))).split('\n');
    expect(tail).toHaveLength(51);
    expect(tail[0]).toMatch(/^line 39952 /);
    expect(tail[48]).toBe('y'.repeat(20_000));
    expect(tail[49]).toBe('last');
    expect(await readLogTail(join(dir, 'missing.log'))).toBe('');
  });

  it('caps a container log: past maxBytes the file is rotated to .1 and a new one started, the tail still reads the newest lines', async () => {
    const { K8sFileLog } = await import('../../src/runtime/logs.js');
    const { readLogTail } = await import('../../src/agent/log-tail.js');
    const dir = await temps.make('logcap');
    const path = join(dir, 'ctr.log');
    const log = new K8sFileLog(path, { maxBytes: 64 * 1024 });
    for (let i = 0; i < 5000; i++) log.write('stdout', `line ${i} ${'.'.repeat(80)}\n`);
    await log.close();
    const size = (await stat(path)).size;
    const rotated = (await stat(`${path}.1`)).size;
    expect(size).toBeLessThanOrEqual(64 * 1024);
    expect(rotated).toBeLessThanOrEqual(64 * 1024);
    expect(rotated).toBeGreaterThan(60 * 1024);
    expect((await readLogTail(path)).split('\n').at(-2)).toMatch(/^line 4999 /);
  });
});
