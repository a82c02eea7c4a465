import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { attachStatement } from '../../attest/attach.js';
import { AttestationError } from '../../attest/dsse.js';
import { makeStatement, predicateTypeFor } from '../../attest/statement.js';
import { verifyAttestations } from '../../attest/verify.js';
import { InvalidInputError } from '../../util/errors.js';
import { addSourceOptions, contextFrom } from '../options.js';
import { signalOnInterrupt } from '../signals.js';

interface SourceFlags {
  creds?: string;
  tlsVerify?: boolean;
  authfile?: string;
}

interface AttestFlags extends SourceFlags {
  key: string;
  predicate: string;
  type: string;
  referrer?: boolean;
  cosignTag?: boolean;
}

interface VerifyFlags extends SourceFlags {
  key: string;
  type?: string;
  output?: string;
}

async function readPredicate(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new InvalidInputError(`cannot read predicate ${path}: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new InvalidInputError(`predicate ${path} is not JSON: ${(err as Error).message}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new InvalidInputError(`predicate ${path} must be a JSON object`);
  return doc as Record<string, unknown>;
}

export function registerAttest(program: Command): void {
  addSourceOptions(
    program
      .command('attest')
      .description('sign a predicate (SBOM, provenance, …) as an in-toto attestation and attach it to an image (like cosign attest)')
      .argument('<image>', 'image in a registry, e.g. docker://localhost:5000/app:1.0')
      .requiredOption('--key <file>', 'private key (PEM; cosign-encrypted keys take $COSIGN_PASSWORD)')
      .requiredOption('--predicate <file>', 'the predicate, a JSON file')
      .option('--type <type>', 'spdx, cyclonedx, slsaprovenance (v1), slsaprovenance02, custom, or a predicate type URI', 'custom')
      .option('--no-referrer', 'do not write the OCI 1.1 referrer')
      .option('--no-cosign-tag', "do not write cosign's sha256-<hex>.att tag"),
  ).action(async (image: string, o: AttestFlags) => {
    const signal = signalOnInterrupt();
    const predicateType = predicateTypeFor(o.type);
    const predicate = await readPredicate(o.predicate);
    const res = await attachStatement(image, (subject) => makeStatement(subject, predicateType, predicate), {
      key: o.key,
      ctx: contextFrom(o),
      referrer: o.referrer,
      cosignTag: o.cosignTag,
      signal,
    });
    process.stdout.write(JSON.stringify(res, null, 2) + '\n');
  });

  addSourceOptions(
    program
      .command('verify-attestation')
      .description('verify the attestations attached to an image with a public key (like cosign verify-attestation)')
      .argument('<image>', 'image in a registry, e.g. docker://localhost:5000/app:1.0')
      .requiredOption('--key <file>', 'public key (PEM)')
      .option('--type <type>', 'only attestations of this type (spdx, cyclonedx, slsaprovenance, … or a URI)'),
  ).action(async (image: string, o: VerifyFlags) => {
    const signal = signalOnInterrupt();
    const predicateType = o.type ? predicateTypeFor(o.type) : undefined;
    const res = await verifyAttestations(image, { key: o.key, predicateType, ctx: contextFrom(o), signal });
    for (const r of res.rejected) process.stderr.write(`rejected ${r.source} ${r.manifest}: ${r.reason}\n`);
    if (res.verified.length === 0) {
      const why = res.rejected.length === 0 ? 'no attestations found' : `${res.rejected.length} attestation(s) failed verification`;
      throw new AttestationError(`${res.image.name}@${res.image.digest}: ${why}${predicateType ? ` of type ${predicateType}` : ''}`);
    }
    // One statement per line, as cosign prints them.
    for (const v of res.verified) process.stdout.write(JSON.stringify({ source: v.source, manifest: v.manifest, statement: v.statement }) + '\n');
  });
}
