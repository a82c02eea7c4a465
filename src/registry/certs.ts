/**
 * TLS material for a registry, as containers-certs.d(5) lays it out: a directory per registry host
 * (`host[:port]`) holding `*.crt` files (CA certificates, trusted on top of the system roots) and
 * `*.cert` / `*.key` pairs (a client certificate and its key). An explicit directory (`--cert-dir`,
 * a sync YAML's `cert-dir`) wins; otherwise the first of the per-user and system certs.d
 * directories that has one for the host.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import { InvalidInputError } from '../util/errors.js';

export interface TlsMaterial {
  /** Where it came from, for messages. */
  dir: string;
  /** CA certificates (PEM) to trust besides the system roots. */
  ca: string[];
  cert?: string;
  key?: string;
}

/** certs.d roots searched for `<root>/<host>`, in containers/image's order. */
export function defaultCertsDirs(): string[] {
  const home = process.env.HOME ?? homedir();
  return [join(process.env.XDG_CONFIG_HOME ?? join(home, '.config'), 'containers', 'certs.d'), '/etc/containers/certs.d', '/etc/docker/certs.d'];
}

function read(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new InvalidInputError(`cannot read ${file}: ${(err as Error).message}`);
  }
}

/** Reads a certs.d directory; a `.cert` without its `.key` (or the reverse) is an error naming the file. */
export function loadCertDir(dir: string): TlsMaterial {
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch (err) {
    throw new InvalidInputError(`cannot read certificate directory ${dir}: ${(err as Error).message}`);
  }
  const out: TlsMaterial = { dir, ca: [] };
  for (const name of names) {
    const file = join(dir, name);
    if (name.endsWith('.crt')) {
      const pem = read(file);
      if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new InvalidInputError(`${file}: not a PEM certificate`);
      out.ca.push(pem);
    } else if (name.endsWith('.cert')) {
      const keyFile = join(dir, `${name.slice(0, -'.cert'.length)}.key`);
      if (!names.includes(`${name.slice(0, -'.cert'.length)}.key`)) throw new InvalidInputError(`${file}: client certificate without its key (${keyFile})`);
      if (out.cert === undefined) {
        out.cert = read(file);
        out.key = read(keyFile);
      }
    } else if (name.endsWith('.key')) {
      if (!names.includes(`${name.slice(0, -'.key'.length)}.cert`))
        throw new InvalidInputError(`${file}: key without its client certificate (${name.slice(0, -'.key'.length)}.cert)`);
    }
  }
  return out;
}

/** The TLS material for `host`: from `certDir` if given, else from `<root>/<host>` of the first root that has it. */
export function tlsMaterialFor(host: string, certDir?: string, roots: readonly string[] = defaultCertsDirs()): TlsMaterial | undefined {
  if (certDir !== undefined) return loadCertDir(certDir);
  for (const root of roots) {
    const dir = join(root, host);
    if (existsSync(dir)) return loadCertDir(dir);
  }
  return undefined;
}

/** undici `connect` options for the material: extra CAs go with the system roots, not instead of them. */
export function connectOptions(tls: TlsMaterial | undefined): { ca?: string[]; cert?: string; key?: string } {
  if (!tls) return {};
  return {
    ...(tls.ca.length > 0 ? { ca: [...rootCertificates, ...tls.ca] } : {}),
    ...(tls.cert ? { cert: tls.cert, key: tls.key } : {}),
  };
}
