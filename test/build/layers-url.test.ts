import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeCopyLayer } from '../../src/build/layers/copy.js';
import { downloadName, fetchUrl } from '../../src/build/layers/url.js';
import { LOOPBACK, freePort } from '../../hack/lib/harness/net.js';
import { TempDirs } from '../../hack/lib/harness/tmp.js';
import { byName, readLayer } from './fixtures-layers/read-layer.js';

const tmp = new TempDirs();
let server: Server;
let base: string;
const body = Buffer.from('payload from a real http server\n'.repeat(5000));
const sha = `sha256:${createHash('sha256').update(body).digest('hex')}`;
const lastModified = 'Wed, 21 Oct 2015 07:28:00 GMT';

beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url === '/files/tool.bin') {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'last-modified': lastModified });
      // Sent in pieces, so the download is really streamed.
      for (let i = 0; i < body.length; i += 16384) res.write(body.subarray(i, i + 16384));
      res.end();
    } else if (req.url === '/redirect') {
      res.writeHead(302, { location: '/files/tool.bin' });
      res.end();
    } else if (req.url === '/private') {
      const ok = req.headers.authorization === `Basic ${Buffer.from('user:s3cret').toString('base64')}`;
      res.writeHead(ok ? 200 : 401);
      res.end(ok ? 'private' : '');
    } else if (req.url === '/named') {
      res.writeHead(200, { 'content-disposition': 'attachment; filename="release.tar.gz"' });
      res.end('x');
    } else {
      res.writeHead(404);
      res.end('nope');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, LOOPBACK, resolve));
  base = `http://${LOOPBACK}:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  await tmp.cleanup();
});

describe('ADD <url>', () => {
  it('downloads with a matching --checksum, names the file from the URL, mode 0600 and Last-Modified mtime', async () => {
    const work = await tmp.make('url-ok');
    const got = await fetchUrl(`${base}/files/tool.bin`, { checksum: sha, workDir: work });
    expect(got.name).toBe('tool.bin');
    expect(readFileSync(got.path).equals(body)).toBe(true);
    expect(got.mtime).toBe(Date.parse(lastModified) / 1000);
    const st = statSync(got.path);
    expect(st.mode & 0o777).toBe(0o600);
    expect(Math.floor(st.mtimeMs / 1000)).toBe(got.mtime);
    // The executor then copies it like any file; it keeps mode and mtime in the layer.
    const layer = await writeCopyLayer({ dir: dirname(got.path) }, { sources: [got.name], dest: '/opt/', workdir: '/' }, { workDir: work });
    const m = byName(await readLayer(layer.path));
    expect(m.get('opt/tool.bin')).toMatchObject({ mode: 0o600, uid: 0, mtime: got.mtime, size: body.length });
  });

  it('follows redirects (the name comes from the URL asked for) and honours Content-Disposition', async () => {
    const work = await tmp.make('url-redir');
    const got = await fetchUrl(`${base}/redirect`, { workDir: work });
    expect(got.name).toBe('redirect');
    expect(readFileSync(got.path).equals(body)).toBe(true);
    expect((await fetchUrl(`${base}/named`, { workDir: work })).name).toBe('release.tar.gz');
    // Credentials in the URL are sent as Basic auth.
    const priv = await fetchUrl(base.replace('http://', 'http://user:s3cret@') + '/private', { workDir: work });
    expect(readFileSync(priv.path, 'utf8')).toBe('private');
    await expect(fetchUrl(`${base}/private`, { workDir: work })).rejects.toThrow(/HTTP 401/);
  });

  it('fails on a checksum mismatch and leaves nothing behind', async () => {
    const work = await tmp.make('url-bad');
    const wrong = `sha256:${'0'.repeat(64)}`;
    await expect(fetchUrl(`${base}/files/tool.bin`, { checksum: wrong, workDir: work })).rejects.toThrow(
      /--checksum\): digest mismatch: expected sha256:0{64}, got sha256:/,
    );
    expect(await readdir(work)).toEqual([]);
    await expect(fetchUrl(`${base}/files/tool.bin`, { checksum: 'md5:abc', workDir: work })).rejects.toThrow(/--checksum "md5:abc": .*unsupported algorithm/);
  });

  it('reports HTTP errors, bad schemes and unreachable hosts with the URL (credentials hidden)', async () => {
    const work = await tmp.make('url-err');
    await expect(fetchUrl(`${base}/missing`, { workDir: work })).rejects.toThrow(new RegExp(`ADD ${base}/missing: HTTP 404`));
    await expect(fetchUrl('ftp://example.invalid/x', { workDir: work })).rejects.toThrow(/only http and https/);
    await expect(fetchUrl('not a url', { workDir: work })).rejects.toThrow(/not a valid URL/);
    const port = await freePort(); // nothing listens there any more
    const closed = `http://user:hunter2@${LOOPBACK}:${port}/x`;
    const err = await fetchUrl(closed, { workDir: work }).catch((e: Error) => e);
    expect(String(err)).toMatch(new RegExp(`ADD http://127\\.0\\.0\\.1:${port}/x: .*ECONNREFUSED`));
    expect(String(err)).not.toContain('hunter2');
    expect(existsSync(work) && (await readdir(work)).length).toBe(0);
  });

  it('never turns a download name into a path', () => {
    expect(downloadName(new URL('http://h/a/b/c.txt'), null)).toBe('c.txt');
    expect(downloadName(new URL('http://h/'), null)).toBe('download');
    expect(downloadName(new URL('http://h/x'), 'attachment; filename="../../etc/passwd"')).toBe('passwd');
    expect(downloadName(new URL('http://h/%2e%2e'), null)).toBe('download');
  });
});
