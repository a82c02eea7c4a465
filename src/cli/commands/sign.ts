import type { Command } from 'commander';
import type { ImageReference } from '../../oci/reference.js';
import { loadPrivateKey } from '../../sign/keys.js';
import { signImage, type SignatureFormat } from '../../sign/sign.js';
import { DockerReference } from '../../transports/docker.js';
import { parseImageName } from '../../transports/index.js';
import { InvalidInputError } from '../../util/errors.js';
import { addSourceOptions, collect, contextFrom } from '../options.js';
import { signalOnInterrupt } from '../signals.js';

interface SignFlags {
  key: string;
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
  if (!(ref instanceof DockerReference)) throw new InvalidInputError(`${verb}: ${name} is not a registry image; signatures are stored in a registry (docker://HOST/REPO:TAG)`);
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

/** `stevedore sign --key cosign.key IMAGE...`: cosign-compatible keyed signatures, by digest. */
export function registerSign(program: Command): void {
  addSourceOptions(
    program
      .command('sign')
      .description('sign images with a key as cosign does: a simple-signing payload under sha256-<hex>.sig and/or a sigstore bundle referrer')
      .argument('<images...>', 'registry images (docker://HOST/REPO:TAG or HOST/REPO@DIGEST)')
      .requiredOption('--key <path>', 'private key: cosign.key (password from COSIGN_PASSWORD or a prompt) or a PKCS#8 PEM')
      .option('--format <simple|bundle>', 'how to store the signature: simple (cosign .sig tag, default), bundle (sigstore bundle referrer); repeatable', collect)
      .option('-a, --annotation <KEY=VALUE>', 'extra claim in the signed payload (repeatable)', collect)
      .option('-o, --output <text|json>', 'report format', 'text'),
  ).action(async (images: string[], o: SignFlags) => {
    const refs = images.map((i) => registryReference(i, 'sign'));
    const formats = parseFormats(o.format);
    const annotations = parseAnnotations(o.annotation);
    const key = await loadPrivateKey(o.key);
    const signal = signalOnInterrupt();
    for (const ref of refs) {
      const result = await signImage(ref, key, { formats, annotations, context: contextFrom(o), signal });
      if (o.output === 'json') process.stdout.write(JSON.stringify(result) + '\n');
      else for (const s of result.stored) process.stdout.write(`Signed ${result.digest} (${s.format}): ${s.location}\n`);
    }
  });
}
