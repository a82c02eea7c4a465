import type { Command } from 'commander';
import { loadPublicKey } from '../../sign/keys.js';
import { verifyImage } from '../../sign/verify.js';
import { InvalidInputError } from '../../util/errors.js';
import { addSourceOptions, collect, contextFrom } from '../options.js';
import { signalOnInterrupt } from '../signals.js';
import { parseFormats, registryReference } from './sign.js';

interface VerifyFlags {
  key?: string[];
  trustedRoot?: string;
  certificateIdentity?: string;
  certificateIdentityRegexp?: string;
  certificateOidcIssuer?: string;
  format?: string[];
  signedRepository?: string;
  output?: 'text' | 'json';
  creds?: string;
  tlsVerify?: boolean;
  authfile?: string;
}

async function keylessOptions(o: VerifyFlags) {
  const any = o.trustedRoot ?? o.certificateIdentity ?? o.certificateIdentityRegexp ?? o.certificateOidcIssuer;
  if (any === undefined) return undefined;
  const san = o.certificateIdentity ?? (o.certificateIdentityRegexp !== undefined ? new RegExp(o.certificateIdentityRegexp) : undefined);
  if (!o.trustedRoot || san === undefined || !o.certificateOidcIssuer) {
    throw new InvalidInputError(
      'keyless verification needs --trusted-root, --certificate-identity (or --certificate-identity-regexp) and --certificate-oidc-issuer',
    );
  }
  const { loadTrustedRoot } = await import('../../sign/keyless.js');
  return { trust: { trustMaterial: await loadTrustedRoot(o.trustedRoot) }, identity: { subjectAlternativeName: san, issuer: o.certificateOidcIssuer } };
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
      .description("verify an image's cosign signatures (.sig tag and sigstore bundle referrers) against public keys, or keyless against a trusted root")
      .argument('<image>', 'registry image (docker://HOST/REPO:TAG or HOST/REPO@DIGEST)')
      .option('--key <path>', 'public key PEM (cosign.pub), a certificate, or a plain private key; repeatable (any may match)', collect)
      .option('--trusted-root <file>', 'keyless: sigstore trusted_root.json (Fulcio CAs, CT logs, Rekor logs), used offline')
      .option('--certificate-identity <san>', "keyless: the signing certificate's subject alternative name (e-mail or URI)")
      .option('--certificate-identity-regexp <re>', 'keyless: a regular expression the SAN must match')
      .option('--certificate-oidc-issuer <url>', 'keyless: the OIDC issuer recorded in the certificate')
      .option('--format <simple|bundle>', 'which stored forms to check (default: both); repeatable', collect)
      .option('--signed-repository <registry/repository>', "repository the signed payload must name (default: the image's own; for mirrors, the upstream)")
      .option('-o, --output <text|json>', 'report format', 'text'),
  ).action(async (image: string, o: VerifyFlags) => {
    const ref = registryReference(image, 'verify');
    const keys = await Promise.all((o.key ?? []).map((k) => loadPublicKey(k)));
    const keyless = await keylessOptions(o);
    if (keys.length === 0 && !keyless) {
      throw new InvalidInputError('verify needs --key, or --trusted-root with --certificate-identity (or -regexp) and --certificate-oidc-issuer');
    }
    const report = await verifyImage(ref, keys, {
      ...(keyless ? { keyless } : {}),
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
