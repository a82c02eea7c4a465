/**
 * Real registries for tests: Debian's `docker-registry` (distribution 2.8) on 127.0.0.1, one
 * process per call, storage in a fresh temp dir, with no auth, htpasswd basic auth or token auth
 * backed by the harness's own token issuer.
 *
 *   const reg = await startRegistry({ auth: 'token' });
 *   afterAll(() => reg.stop());
 *   // docker://${reg.host}/team/app:1, credentials reg.username / reg.password
 */
import { closeSync, openSync } from 'node:fs';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { freePort, httpGet, LOOPBACK, sleep } from './net.js';
import { runChecked, spawnManaged, type ManagedProcess } from './procs.js';
import { makeTempDir, removeTempDir } from './tmp.js';
import { startTokenIssuer, type GrantPolicy, type TokenIssuer, type TokenRequestLogEntry } from './token-issuer.js';

export type RegistryAuth = 'none' | 'basic' | 'token';

export interface StartRegistryOptions {
  auth?: RegistryAuth;
  /** Label for temp dirs and logs; also the start of the token `service` name. */
  name?: string;
  /** Override the generated user name (basic and token modes). */
  username?: string;
  /** Token lifetime for token mode (note: distribution 2.8 allows 60 s of clock leeway on `exp`). */
  tokenTtlSeconds?: number;
  /** Token mode: what a token grants; default is "valid users get what they ask, anonymous nothing". */
  tokenGrant?: GrantPolicy;
  /** Registry log level; default 'info' (access log lines included). */
  logLevel?: 'error' | 'warn' | 'info' | 'debug';
  /**
   * Address to listen on; default 127.0.0.1. The local node (node.ts) gives its bridge's own
   * address, so Pods on the bridge reach the registry too (still nothing outside the machine).
   */
  address?: string;
}

export interface TestRegistry {
  readonly auth: RegistryAuth;
  readonly name: string;
  /** `127.0.0.1:PORT`, the registry part of an image reference. */
  readonly host: string;
  /** `http://127.0.0.1:PORT`. */
  readonly url: string;
  readonly username?: string;
  readonly password?: string;
  /** Root directory of the filesystem storage driver. */
  readonly storageDir: string;
  /** The registry's stdout+stderr. Print it when a test fails: `console.log(await reg.readLog())`. */
  readonly logFile: string;
  readonly configFile: string;
  /** Temp dir holding everything above; removed by `stop()`. */
  readonly dir: string;
  /** Token mode only: realm URL, service name and the issuer itself. */
  readonly realm?: string;
  readonly service?: string;
  readonly tokenIssuer?: TokenIssuer;
  /** Token requests served so far (0 unless auth is 'token'), to assert token caching. */
  tokenRequests(): number;
  tokenLog(): TokenRequestLogEntry[];
  readLog(): Promise<string>;
  /** Kills the registry, stops the issuer and removes the temp dir. Idempotent. */
  stop(): Promise<void>;
}

const REGISTRY_BIN = process.env.STEVEDORE_TEST_REGISTRY_BIN ?? '/usr/bin/docker-registry';
const START_TIMEOUT_MS = 20_000;
const PORT_ATTEMPTS = 5;

export async function startRegistry(opts: StartRegistryOptions = {}): Promise<TestRegistry> {
  const auth = opts.auth ?? 'none';
  const name = opts.name ?? `registry-${auth}`;
  const address = opts.address ?? LOOPBACK;
  const dir = await makeTempDir(name);
  let issuer: TokenIssuer | undefined;
  try {
    const storageDir = join(dir, 'storage');
    await mkdir(storageDir);
    const logFile = join(dir, 'registry.log');
    const configFile = join(dir, 'config.yml');

    const username = auth === 'none' ? undefined : (opts.username ?? 'stevedore');
    const password = auth === 'none' ? undefined : randomBytes(12).toString('base64url');
    const service = `${name}-service`;

    let authConfig: Record<string, unknown> | undefined;
    if (auth === 'basic') {
      // bcrypt is the only hash distribution's htpasswd backend accepts.
      const { stdout } = await runChecked('htpasswd', ['-Bbn', username!, password!]);
      const htpasswdFile = join(dir, 'htpasswd');
      await writeFile(htpasswdFile, stdout.trim() + '\n');
      authConfig = { htpasswd: { realm: 'stevedore-test', path: htpasswdFile } };
    } else if (auth === 'token') {
      issuer = await startTokenIssuer({
        dir,
        service,
        issuer: 'stevedore-test-issuer',
        users: { [username!]: password! },
        ttlSeconds: opts.tokenTtlSeconds,
        grant: opts.tokenGrant,
      });
      authConfig = {
        token: {
          realm: issuer.realm,
          service,
          issuer: 'stevedore-test-issuer',
          rootcertbundle: issuer.certFile,
        },
      };
    }

    let proc: ManagedProcess | undefined;
    let port = 0;
    for (let attempt = 1; proc === undefined; attempt++) {
      port = await freePort();
      // JSON is valid YAML, and saves us a YAML writer.
      const config = {
        version: '0.1',
        log: { level: opts.logLevel ?? 'info', formatter: 'text', fields: { service: 'registry', name } },
        storage: {
          filesystem: { rootdirectory: storageDir },
          delete: { enabled: true },
          cache: { blobdescriptor: 'inmemory' },
          // The purger walks the upload dirs in the background; tests do not need it.
          maintenance: { uploadpurging: { enabled: false } },
        },
        http: {
          addr: `${address}:${port}`,
          // Without a secret each start generates one and logs a warning; fixed per registry.
          secret: randomBytes(16).toString('hex'),
          headers: { 'X-Content-Type-Options': ['nosniff'] },
        },
        health: { storagedriver: { enabled: false } },
        ...(authConfig === undefined ? {} : { auth: authConfig }),
      };
      await writeFile(configFile, JSON.stringify(config, null, 2));
      const started = await launch(dir, configFile, logFile, `http://${address}:${port}`);
      if (started.ok) {
        proc = started.proc;
        break;
      }
      const log = await readFile(logFile, 'utf8').catch(() => '');
      // Someone took the port between freePort() and the registry's bind: pick another one.
      if (/address already in use/i.test(log) && attempt < PORT_ATTEMPTS) continue;
      throw new Error(`docker-registry did not start (${started.reason}); log ${logFile}:\n${log}`);
    }

    const host = `${address}:${port}`;
    const url = `http://${host}`;
    const running = proc;
    const tokenIssuer = issuer;
    let stopped: Promise<void> | undefined;
    return {
      auth,
      name,
      host,
      url,
      username,
      password,
      storageDir,
      logFile,
      configFile,
      dir,
      realm: tokenIssuer?.realm,
      service: auth === 'token' ? service : undefined,
      tokenIssuer,
      tokenRequests: () => tokenIssuer?.requests() ?? 0,
      tokenLog: () => tokenIssuer?.log() ?? [],
      readLog: () => readFile(logFile, 'utf8').catch(() => ''),
      stop() {
        stopped ??= (async () => {
          await running.stop();
          await tokenIssuer?.stop();
          await removeTempDir(dir);
        })();
        return stopped;
      },
    };
  } catch (e) {
    await issuer?.stop();
    await removeTempDir(dir);
    throw e;
  }
}

type LaunchResult = { ok: true; proc: ManagedProcess } | { ok: false; reason: string };

/** Starts the registry and waits until `GET /v2/` answers 200 or 401 (auth modes challenge). */
async function launch(dir: string, configFile: string, logFile: string, url: string): Promise<LaunchResult> {
  // The child writes straight into the log file: no pipe for us to drain, and the log survives
  // if the worker dies. Truncate per attempt so a retry's log is not mixed with the last one.
  const fd = openSync(logFile, 'w');
  let proc: ManagedProcess;
  try {
    proc = await spawnManaged(REGISTRY_BIN, ['serve', configFile], {
      env: registryEnv(),
      output: [fd, fd],
      removeWhenGone: dir,
    });
  } finally {
    closeSync(fd);
  }
  const deadline = Date.now() + START_TIMEOUT_MS;
  let lastError = 'no answer';
  while (Date.now() < deadline) {
    if (proc.hasExited()) {
      const info = await proc.exited;
      return { ok: false, reason: `exited with ${info.code ?? info.signal}` };
    }
    try {
      const res = await httpGet(`${url}/v2/`, {}, 1000);
      if (res.status === 200 || res.status === 401) return { ok: true, proc };
      lastError = `GET /v2/ answered ${res.status}`;
    } catch (e) {
      lastError = e instanceof Error ? e.message : String(e);
    }
    await sleep(50);
  }
  await proc.stop();
  return { ok: false, reason: `not ready after ${START_TIMEOUT_MS} ms: ${lastError}` };
}

/** The caller's environment minus REGISTRY_* variables, which would override our config file. */
function registryEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('REGISTRY_')) env[k] = v;
  return env;
}
