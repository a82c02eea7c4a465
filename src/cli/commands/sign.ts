import type { Command } from 'commander';
import type { ImageReference } from '../../oci/reference.js';
import { loadPrivateKey } from '../../sign/keys.js';
import { signImage, type SignatureFormat } from '../../sign/sign.js';
import { DockerReference } from '../../transports/docker.js';
import { parseImageName } from '../../transports/index.js';
import { InvalidInputError } from '../../util/errors.js';
import { addSourceOptions, collect, contextFrom, parseBool } from '../options.js';
import { signalOnInterrupt } from '../signals.js';

interface SignFlags {
  key?: string;
  identityToken?: string;
  fulcioUrl?: string;
  rekorUrl?: string;
  tlogUpload?: boolean;
  format?: string[];
  annotation?: string[];
  output?: 'text' | 'json';
  creds?: string;
  tlsVerify?: boolean;
  authfile?: string;
}

/** A registry image named with or without `docker://`; signatures live next to it in its repository. */
export function registryReference(name: string, verb: string): ImageReference {
  const ref = parseImageName(name);
  if (!(ref instanceof DockerReference))
    throw new InvalidInputError(`${verb}: ${name} is not a registry image; signatures are stored in a registry (docker://HOST/REPO:TAG)`);
  return ref.ref;
}

export function parseFormats(values: string[] | undefined): SignatureFormat[] | undefined {
  if (!values || values.length === 0) return undefined;
  const out = values.flatMap((v) => v.split(',')).map((v) => v.trim());
  for (const f of out) if (f !== 'simple' && f !== 'bundle') throw new InvalidInputError(`--format must be simple or bundle, got "${f}"`);
  return [...new Set(out)] as SignatureFormat[];
}

function parseAnnotations(values: string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const i = v.indexOf('=');
    if (i <= 0) throw new InvalidInputError(`-a ${v}: expected KEY=VALUE`);
    out[v.slice(0, i)] = v.slice(i + 1);
  }
  return out;
}

/** Keyless signing's OIDC token: the flag (or @FILE), else $SIGSTORE_ID_TOKEN. */
async function identityToken(o: SignFlags): Promise<string> {
  const v = o.identityToken ?? process.env.SIGSTORE_ID_TOKEN;
  if (!v) throw new InvalidInputError('sign needs --key, or for keyless signing an OIDC token (--identity-token or $SIGSTORE_ID_TOKEN)');
  if (!v.startsWith('@')) return v.trim();
  const { readFile } = await import('node:fs/promises');
  return (await readFile(v.slice(1), 'utf8')).trim();
}

/** `stevedore sign --key cosign.key IMAGE...`: cosign-compatible keyed signatures, by digest. */
export function registerSign(program: Command): void {
  addSourceOptions(
    program
      .command('sign')
      .description(
        'sign images as cosign does, with a key (simple-signing payload under sha256-<hex>.sig and/or a sigstore bundle referrer) or keyless (Fulcio + Rekor bundle referrer)',
      )
      .argument('<images...>', 'registry images (docker://HOST/REPO:TAG or HOST/REPO@DIGEST)')
      .option('--key <path>', 'private key: cosign.key (password from COSIGN_PASSWORD or a prompt) or a PKCS#8 PEM; without it, keyless')
      .option('--identity-token <token|@file>', 'keyless: OIDC identity token for Fulcio, or @FILE to read it (default: $SIGSTORE_ID_TOKEN)')
      .option('--fulcio-url <url>', 'keyless: Fulcio server', 'https://fulcio.sigstore.dev')
      .option('--rekor-url <url>', 'keyless: Rekor server', 'https://rekor.sigstore.dev')
      .option('--tlog-upload <bool>', 'keyless: record the signature in Rekor', parseBool, true)
      .option(
        '--format <simple|bundle>',
        'how to store the signature: simple (cosign .sig tag, default), bundle (sigstore bundle referrer); repeatable',
        collect,
      )
      .option('-a, --annotation <KEY=VALUE>', 'extra claim in the signed payload (repeatable)', collect)
      .option('-o, --output <text|json>', 'report format', 'text'),
  ).action(async (images: string[], o: SignFlags) => {
    const refs = images.map((i) => registryReference(i, 'sign'));
    const formats = parseFormats(o.format);
    const annotations = parseAnnotations(o.annotation);
    const signal = signalOnInterrupt();
    const key = o.key ? await loadPrivateKey(o.key) : undefined;
    const token = key ? undefined : await identityToken(o);
    for (const ref of refs) {
      const result = key
        ? await signImage(ref, key, { formats, annotations, context: contextFrom(o), signal })
        : await (await import('../../sign/keyless.js')).signImageKeyless(ref, {
            identityToken: token!,
            fulcioURL: o.fulcioUrl,
            rekorURL: o.rekorUrl,
            tlogUpload: o.tlogUpload,
            context: contextFrom(o),
            signal,
          });
      if (o.output === 'json') process.stdout.write(JSON.stringify(result) + '\n');
      else for (const s of result.stored) process.stdout.write(`Signed ${result.digest} (${s.format}): ${s.location}\n`);
    }
  });
}
