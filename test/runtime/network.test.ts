/**
 * `stevedore run` on a private network (pasta, slirp4netns) with published ports, as root and
 * rootless (the engine as root of a user namespace over an unprivileged host range, made by
 * userns-helper.py as in rootless.test.ts). Everything stays on loopback: the container serves on
 * a published 127.0.0.1 port and reaches a server on the host's 127.0.0.1 through its gateway;
 * no test sends to a non-loopback address.
 */
import { spawn } from 'node:child_process';
import { chmod, chown, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeBusyboxImage, type FixtureImage } from '../../hack/lib/harness/images.js';
import { freePort, httpGet, LOOPBACK, sleep } from '../../hack/lib/harness/net.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const HOOKS = join(HERE, 'ts-hooks.mjs');
const HELPER = join(HERE, 'userns-helper.py');
const MAIN = resolve(HERE, '..', '..', 'src', 'cli', 'main.ts');
const BASE = 410000;

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

let dir: string;
let image: FixtureImage;
let host: Server;
let hostPort: number;
/** Every request the host's loopback server answered (path), to prove where a connection landed. */
const hostHits: string[] = [];

type Mode = 'root' | 'rootless';

function stevedore(mode: Mode, args: string[]): Promise<Outcome> {
  const code = `const m = await import(${JSON.stringify(MAIN)}); await m.main(['node', 'stevedore', ...process.argv.slice(1)]);`;
  const node = [process.execPath, '--import', HOOKS, '--input-type=module', '-e', code, ...args];
  const [cmd, ...argv] = mode === 'root' ? node : ['python3', HELPER, String(BASE), '65536', ...node];
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd!, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, STEVEDORE_ROOT: join(dir, `store-${mode}`), HOME: dir } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.once('error', reject);
    child.once('close', (c) => {
      clearTimeout(timer);
      resolvePromise({ code: c ?? 255, stdout, stderr });
    });
  });
}

async function chownTree(path: string, uid: number, gid: number): Promise<void> {
  await chown(path, uid, gid);
  if (!(await stat(path)).isDirectory()) return;
  for (const name of await readdir(path)) await chownTree(join(path, name), uid, gid);
}

/** Polls GET url until it answers (the container's server starts after `run -d` returns). */
async function getWhenUp(url: string): Promise<string> {
  let last: unknown;
  for (let i = 0; i < 100; i++) {
    try {
      return (await httpGet(url, {}, 1000)).body;
    } catch (err) {
      last = err;
      await sleep(100);
    }
  }
  throw last;
}

/** Whether nothing answers on 127.0.0.1:port within 30 s. */
async function released(port: number): Promise<boolean> {
  for (let i = 0; i < 300; i++) {
    if (
      !(await httpGet(`http://${LOOPBACK}:${port}/`, {}, 500).then(
        () => true,
        () => false,
      ))
    )
      return true;
    await sleep(100);
  }
  return false;
}

const WWW = 'busybox mkdir -p /tmp/www && echo served-from-container > /tmp/www/index.html';
/** A server that ends by itself after `seconds`. */
// Not the last command of `sh -c` (sh would exec it as PID 1, which ignores the TERM of `timeout`).
const httpdFor = (seconds: number): string => `${WWW} && busybox timeout -s TERM ${seconds} busybox httpd -f -p 80 -h /tmp/www; exit $?`;

const TUN = '/dev/net/tun';
let tunMode: number | undefined;

beforeAll(async () => {
  // Rootless, pasta and slirp4netns open the tap device as the user: Debian's udev rules make it
  // 0666; a machine without udev (this CI VM) leaves the kernel's 0600. Set what udev would, put it back after.
  const mode = statSync(TUN).mode & 0o777;
  if (mode !== 0o666) {
    tunMode = mode;
    await chmod(TUN, 0o666);
  }
  dir = await mkdtemp(join(tmpdir(), 'stevedore-network-'));
  image = await makeBusyboxImage(join(dir, 'layout'), 'bb');
  await chownTree(dir, BASE, BASE);
  await chmod(dir, 0o755);
  host = createServer((req, res) => {
    hostHits.push(req.url ?? '');
    res.end(`host-loopback-says-hi ${req.url}\n`);
  });
  await new Promise<void>((r) => host.listen(0, LOOPBACK, r));
  hostPort = (host.address() as { port: number }).port;
});

afterAll(async () => {
  if (tunMode !== undefined) await chmod(TUN, tunMode);
  await new Promise((r) => host.close(r));
  await rm(dir, { recursive: true, force: true });
});

describe.each(['root', 'rootless'] as const)('private network (%s)', (mode) => {
  it.each(['private', 'pasta', 'slirp4netns'] as const)(
    '-p 127.0.0.1:PORT:80 (--network %s) serves on the published loopback port; the port is released when the container ends',
    async (network) => {
      const port = await freePort();
      const name = `web-${network}`;
      // The server ends by itself: the test does not depend on `stop` (rootless without a cgroup,
      // `runc kill --all` fails and stop cannot reach the container; see docs/networking.md).
      const publish = ['--name', name, '--network', network, '-p', `127.0.0.1:${port}:80`, image.ociRef, 'sh', '-c', httpdFor(6)];
      const d = await stevedore(mode, ['run', '-d', ...publish]);
      expect(d.code, d.stderr).toBe(0);
      expect(await getWhenUp(`http://${LOOPBACK}:${port}/`)).toBe('served-from-container\n');
      // The helper goes with the container (the monitor tears the network down just after it exits): the port is free again.
      expect(await released(port)).toBe(true);
      const exited = new RegExp(`Exited \\(143\\)\\s+${name}\n`);
      for (let i = 0; i < 100 && !exited.test((await stevedore(mode, ['ps', '-a'])).stdout); i++) await sleep(200);
      expect((await stevedore(mode, ['ps', '-a'])).stdout).toMatch(exited);
      expect((await stevedore(mode, ['rm', name])).code).toBe(0);
    },
  );

  it("-p alone means a private network (podman's default), and the port is bound on the given address only", async () => {
    const port = await freePort();
    const running = stevedore(mode, ['run', '--rm', '-p', `127.0.0.1:${port}:80`, image.ociRef, 'sh', '-c', httpdFor(5)]);
    expect(await getWhenUp(`http://${LOOPBACK}:${port}/`)).toBe('served-from-container\n');
    // Bound to 127.0.0.1, so 127.0.0.2 (also loopback) gets no answer.
    await expect(httpGet(`http://127.0.0.2:${port}/`, {}, 1000)).rejects.toThrow();
    expect((await running).code).toBe(143); // busybox timeout's SIGTERM
  });

  it.each(['pasta', 'slirp4netns'] as const)("outbound (%s): the gateway 10.0.2.2 reaches the host's loopback; the only route is to it", async (network) => {
    const r = await stevedore(mode, [
      'run',
      '--rm',
      '--network',
      network,
      image.ociRef,
      'sh',
      '-c',
      `busybox wget -q -O- http://10.0.2.2:${hostPort}/via-gateway-${network}-${mode}; cat /proc/net/route; busybox ip -4 addr show eth0`,
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`host-loopback-says-hi /via-gateway-${network}-${mode}`);
    expect(hostHits).toContain(`/via-gateway-${network}-${mode}`);
    // /proc/net/route: one route, destination 10.0.2.2/32 (little-endian hex), no default (00000000).
    const routes = r.stdout
      .split('\n')
      .filter((l) => /^eth0\s/.test(l))
      .map((l) => l.split(/\s+/).slice(1, 3));
    expect(routes).toEqual([['0202000A', '00000000']]);
    expect(r.stdout).toContain('inet 10.0.2.100/32');
  });
});

describe('private network: what a hostile container cannot do', () => {
  it('a user who may not open /dev/net/tun gets a clear error, not a half-made network', async () => {
    await chmod(TUN, 0o600);
    try {
      const r = await stevedore('rootless', ['run', '--rm', '--network', 'pasta', image.ociRef, 'true']);
      expect(r.code).toBe(125);
      expect(r.stderr).toContain('/dev/net/tun is not readable and writable by this user');
    } finally {
      await chmod(TUN, 0o666);
    }
  });

  it("its own 127.0.0.1 is not the host's (no namespace-to-host port forwarding)", async () => {
    const r = await stevedore('root', [
      'run',
      '--rm',
      '--network',
      'pasta',
      image.ociRef,
      'sh',
      '-c',
      `busybox wget -q -T 2 -O- http://127.0.0.1:${hostPort}/leak; echo rc=$?`,
    ]);
    expect(r.stdout).toMatch(/rc=[1-9]/);
    expect(hostHits).not.toContain('/leak');
  });

  it('cannot add a route past the host (no CAP_NET_ADMIN), and another address of the gateway subnet goes nowhere', async () => {
    const r = await stevedore('root', [
      'run',
      '--rm',
      '--network',
      'private',
      image.ociRef,
      'sh',
      '-c',
      `busybox ip route add default via 10.0.2.2 dev eth0; echo route=$?; busybox wget -q -T 2 -O- http://10.0.2.3:${hostPort}/other; echo wget=$?`,
    ]);
    expect(r.stdout).toMatch(/route=[1-9]/);
    expect(r.stdout).toMatch(/wget=[1-9]/);
    expect(hostHits).not.toContain('/other');
  });

  it('a host port already in use fails the run with a clear error and leaves no container running', async () => {
    const port = hostPort; // bound by the test's own server
    const r = await stevedore('root', ['run', '--rm', '--network', 'pasta', '-p', `127.0.0.1:${port}:80`, image.ociRef, 'true']);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/pasta/);
    expect((await httpGet(`http://${LOOPBACK}:${port}/still-mine`)).body).toContain('host-loopback-says-hi');
  });
});

describe('--hostname, --dns, --add-host', () => {
  it('are written to /etc/hostname, /etc/resolv.conf and /etc/hosts, with host.containers.internal on a private network', async () => {
    const r = await stevedore('root', [
      'run',
      '--rm',
      '--network',
      'private',
      '--hostname',
      'web1',
      '--dns',
      '192.0.2.53',
      '--add-host',
      'db.internal:10.0.2.2',
      image.ociRef,
      'sh',
      '-c',
      'cat /etc/hostname /etc/resolv.conf /etc/hosts; busybox hostname',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe('web1');
    expect(lines).toContain('nameserver 192.0.2.53');
    expect(lines.filter((l) => l.startsWith('nameserver'))).toEqual(['nameserver 192.0.2.53']);
    expect(lines).toContain('10.0.2.2\tdb.internal');
    expect(lines).toContain('10.0.2.2\thost.containers.internal host.docker.internal');
    expect(lines).toContain('10.0.2.100\tweb1');
    expect(lines[lines.length - 2]).toBe('web1');
  });

  it('bad values are refused before anything runs', async () => {
    for (const args of [
      ['-p', '80'],
      ['-p', '1:2:3:4'],
      ['-p', '8080:80/sctp'],
      ['-p', '0:80'],
      ['--dns', 'not-an-ip'],
      ['--add-host', 'noip'],
      ['--network', 'bridge'],
      ['--network', 'none', '-p', '8080:80'],
    ]) {
      const r = await stevedore('root', ['run', '--rm', ...args, image.ociRef, 'true']);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(125);
    }
  });
});
