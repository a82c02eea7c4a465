import type { Command } from 'commander';
import { loadPublicKey } from '../../sign/keys.js';
import { verifyImage } from '../../sign/verify.js';
import { addSourceOptions, collect, contextFrom } from '../options.js';
import { signalOnInterrupt } from '../signals.js';
import { parseFormats, registryReference } from './sign.js';

interface VerifyFlags {
  key: string[];
  format?: string[];
  signedRepository?: string;
  output?: 'text' | 'json';
  creds?: string;
  tlsVerify?: boolean;
  authfile?: string;
}

/**
 * `stevedore verify --key cosign.pub IMAGE`: at least one stored signature must verify with one of
 * the keys and name the image's digest and repository. Prints the verified signatures; a failure is
 * an error that lists why each signature was refused.
 */
export function registerVerify(program: Command): void {
  addSourceOptions(
    program
      .command('verify')
      .description('verify an image\'s cosign signatures (.sig tag and sigstore bundle referrers) against public keys')
      .argument('<image>', 'registry image (docker://HOST/REPO:TAG or HOST/REPO@DIGEST)')
      .requiredOption('--key <path>', 'public key PEM (cosign.pub), a certificate, or a plain private key; repeatable (any may match)', collect)
      .option('--format <simple|bundle>', 'which stored forms to check (default: both); repeatable', collect)
      .option('--signed-repository <registry/repository>', 'repository the signed payload must name (default: the image\'s own; for mirrors, the upstream)')
      .option('-o, --output <text|json>', 'report format', 'text'),
  ).action(async (image: string, o: VerifyFlags) => {
    const ref = registryReference(image, 'verify');
    const keys = await Promise.all(o.key.map((k) => loadPublicKey(k)));
    const report = await verifyImage(ref, keys, {
      formats: parseFormats(o.format),
      signedRepository: o.signedRepository,
      context: contextFrom(o),
      signal: signalOnInterrupt(),
    });
    if (o.output === 'json') {
      process.stdout.write(JSON.stringify(report) + '\n');
      return;
    }
    process.stderr.write(`Verification for ${image} (${report.digest}): ${report.verified.length} valid signature(s)\n`);
    for (const v of report.verified) process.stdout.write(`${v.format}\t${v.location}${v.identity ? `\t${v.identity}` : ''}\n`);
  });
}
