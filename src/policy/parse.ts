import { readFile } from 'node:fs/promises';
import { isAbsolute, normalize } from 'node:path';
import { parseReference } from '../oci/reference.js';
import { InvalidInputError } from '../util/errors.js';
import { findDuplicateKey } from './json-strict.js';
import type { FulcioRequirement, Policy, PolicyRequirement, SignedIdentity, SigstoreSignedRequirement } from './types.js';
import { isObject } from '../util/is-object.js';

/** A policy file that cannot be used as a whole: unknown, missing, duplicated or contradictory fields. */
export class InvalidPolicyError extends InvalidInputError {
  constructor(message: string) {
    super(`invalid policy: ${message}`);
  }
}

type Obj = Record<string, unknown>;

/** Every key must be known; `required` keys must be there. */
function checkKeys(o: Obj, at: string, allowed: readonly string[], required: readonly string[] = []): void {
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) throw new InvalidPolicyError(`${at}: unknown field "${k}" (allowed: ${allowed.join(', ')})`);
  }
  for (const k of required) if (!(k in o)) throw new InvalidPolicyError(`${at}: field "${k}" is required`);
}

function str(v: unknown, at: string): string {
  if (typeof v !== 'string') throw new InvalidPolicyError(`${at} must be a string`);
  return v;
}

function strList(v: unknown, at: string): string[] {
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new InvalidPolicyError(`${at} must be a list of strings`);
  if (v.length === 0) throw new InvalidPolicyError(`${at} contains no entries`);
  return v as string[];
}

/** Go's []byte in JSON: standard base64. */
function bytes(v: unknown, at: string): Buffer {
  if (typeof v !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v) || v.length % 4 !== 0) throw new InvalidPolicyError(`${at} must be base64-encoded data`);
  return Buffer.from(v, 'base64');
}

function bytesList(v: unknown, at: string): Buffer[] {
  if (!Array.isArray(v)) throw new InvalidPolicyError(`${at} must be a list of base64-encoded data`);
  if (v.length === 0) throw new InvalidPolicyError(`${at} contains no entries`);
  return v.map((x, i) => bytes(x, `${at}[${i}]`));
}

function dockerRef(v: string, at: string): ReturnType<typeof parseReference> {
  try {
    return parseReference(v);
  } catch (err) {
    throw new InvalidPolicyError(`${at}: invalid format of "${v}": ${(err as Error).message}`);
  }
}

const DOMAIN =
  /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*(?::[0-9]+)?$|^\[[0-9a-fA-F:.]+\](?::[0-9]+)?$/;

/** remapIdentity prefixes: a bare host[:port], or a fully qualified `host/path` name. */
function checkRemapPrefix(v: string, at: string): void {
  if (DOMAIN.test(v)) return;
  const slash = v.indexOf('/');
  if (
    slash > 0 &&
    DOMAIN.test(v.slice(0, slash)) &&
    /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/.test(v.slice(slash + 1))
  )
    return;
  throw new InvalidPolicyError(`${at}: prefix "${v}" is not valid (expected host[:port] or host[:port]/path)`);
}

export function parseSignedIdentity(v: unknown, at: string): SignedIdentity {
  if (!isObject(v)) throw new InvalidPolicyError(`${at} must be an object`);
  const type = v.type;
  switch (type) {
    case 'matchExact':
    case 'matchRepoDigestOrExact':
    case 'matchRepository':
      checkKeys(v, at, ['type'], ['type']);
      return { type };
    case 'exactReference': {
      checkKeys(v, at, ['type', 'dockerReference'], ['type', 'dockerReference']);
      const ref = str(v.dockerReference, `${at}.dockerReference`);
      const parsed = dockerRef(ref, `${at}.dockerReference`);
      if (!parsed.tag && !parsed.digest) throw new InvalidPolicyError(`${at}.dockerReference "${ref}" contains neither a tag nor a digest`);
      return { type, dockerReference: ref };
    }
    case 'exactRepository': {
      checkKeys(v, at, ['type', 'dockerRepository'], ['type', 'dockerRepository']);
      const repo = str(v.dockerRepository, `${at}.dockerRepository`);
      dockerRef(repo, `${at}.dockerRepository`);
      return { type, dockerRepository: repo };
    }
    case 'remapIdentity': {
      checkKeys(v, at, ['type', 'prefix', 'signedPrefix'], ['type', 'prefix', 'signedPrefix']);
      const prefix = str(v.prefix, `${at}.prefix`);
      const signedPrefix = str(v.signedPrefix, `${at}.signedPrefix`);
      checkRemapPrefix(prefix, `${at}.prefix`);
      checkRemapPrefix(signedPrefix, `${at}.signedPrefix`);
      return { type, prefix, signedPrefix };
    }
    default:
      throw new InvalidPolicyError(`${at}: unknown signedIdentity type ${JSON.stringify(type)}`);
  }
}

function parseFulcio(v: unknown, at: string): FulcioRequirement {
  if (!isObject(v)) throw new InvalidPolicyError(`${at} must be an object`);
  checkKeys(v, at, ['caPath', 'caData', 'oidcIssuer', 'subjectEmail']);
  const f: Partial<FulcioRequirement> = {};
  if ('caPath' in v) f.caPath = str(v.caPath, `${at}.caPath`);
  if ('caData' in v) f.caData = bytes(v.caData, `${at}.caData`);
  if (f.caPath !== undefined && f.caData !== undefined) throw new InvalidPolicyError(`${at}: caPath and caData cannot be used together`);
  if (f.caPath === undefined && f.caData === undefined) throw new InvalidPolicyError(`${at}: one of caPath and caData must be specified`);
  if (!v.oidcIssuer) throw new InvalidPolicyError(`${at}: oidcIssuer not specified`);
  if (!v.subjectEmail) throw new InvalidPolicyError(`${at}: subjectEmail not specified`);
  f.oidcIssuer = str(v.oidcIssuer, `${at}.oidcIssuer`);
  f.subjectEmail = str(v.subjectEmail, `${at}.subjectEmail`);
  return f as FulcioRequirement;
}

function parseSigstoreSigned(v: Obj, at: string): SigstoreSignedRequirement {
  checkKeys(v, at, [
    'type',
    'keyPath',
    'keyPaths',
    'keyData',
    'keyDatas',
    'fulcio',
    'rekorPublicKeyPath',
    'rekorPublicKeyPaths',
    'rekorPublicKeyData',
    'rekorPublicKeyDatas',
    'signedIdentity',
  ]);
  const r: SigstoreSignedRequirement = {
    type: 'sigstoreSigned',
    signedIdentity: 'signedIdentity' in v ? parseSignedIdentity(v.signedIdentity, `${at}.signedIdentity`) : { type: 'matchRepoDigestOrExact' },
  };
  if ('keyPath' in v) r.keyPath = str(v.keyPath, `${at}.keyPath`);
  if ('keyPaths' in v) r.keyPaths = strList(v.keyPaths, `${at}.keyPaths`);
  if ('keyData' in v) r.keyData = bytes(v.keyData, `${at}.keyData`);
  if ('keyDatas' in v) r.keyDatas = bytesList(v.keyDatas, `${at}.keyDatas`);
  if ('fulcio' in v) r.fulcio = parseFulcio(v.fulcio, `${at}.fulcio`);
  if ('rekorPublicKeyPath' in v) r.rekorPublicKeyPath = str(v.rekorPublicKeyPath, `${at}.rekorPublicKeyPath`);
  if ('rekorPublicKeyPaths' in v) r.rekorPublicKeyPaths = strList(v.rekorPublicKeyPaths, `${at}.rekorPublicKeyPaths`);
  if ('rekorPublicKeyData' in v) r.rekorPublicKeyData = bytes(v.rekorPublicKeyData, `${at}.rekorPublicKeyData`);
  if ('rekorPublicKeyDatas' in v) r.rekorPublicKeyDatas = bytesList(v.rekorPublicKeyDatas, `${at}.rekorPublicKeyDatas`);
  const keySources = ['keyPath', 'keyPaths', 'keyData', 'keyDatas', 'fulcio'].filter((k) => k in v);
  if (keySources.length !== 1) {
    throw new InvalidPolicyError(
      `${at}: exactly one of keyPath, keyPaths, keyData, keyDatas and fulcio must be specified, ${keySources.length === 0 ? 'none' : keySources.join(' and ')} given`,
    );
  }
  const rekorSources = ['rekorPublicKeyPath', 'rekorPublicKeyPaths', 'rekorPublicKeyData', 'rekorPublicKeyDatas'].filter((k) => k in v);
  if (rekorSources.length > 1) throw new InvalidPolicyError(`${at}: at most one of ${rekorSources.join(', ')} may be used`);
  if (r.fulcio && rekorSources.length === 0)
    throw new InvalidPolicyError(`${at}: fulcio needs a Rekor public key (rekorPublicKeyPath, -Paths, -Data or -Datas)`);
  return r;
}

export function parseRequirement(v: unknown, at: string): PolicyRequirement {
  if (!isObject(v)) throw new InvalidPolicyError(`${at} must be an object`);
  switch (v.type) {
    case 'insecureAcceptAnything':
    case 'reject':
      checkKeys(v, at, ['type'], ['type']);
      return { type: v.type };
    case 'sigstoreSigned':
      return parseSigstoreSigned(v, at);
    case 'signedBy': {
      checkKeys(v, at, ['type', 'keyType', 'keyPath', 'keyPaths', 'keyData', 'signedIdentity']);
      const keyType = v.keyType;
      if (keyType !== 'GPGKeys' && keyType !== 'signedByGPGKeys' && keyType !== 'X509Certificates' && keyType !== 'signedByX509CAs') {
        throw new InvalidPolicyError(`${at}: unrecognized keyType ${JSON.stringify(keyType)}`);
      }
      const sources = ['keyPath', 'keyPaths', 'keyData'].filter((k) => k in v);
      if (sources.length !== 1)
        throw new InvalidPolicyError(
          `${at}: exactly one of keyPath, keyPaths and keyData must be specified, ${sources.length === 0 ? 'none' : sources.join(' and ')} given`,
        );
      return {
        type: 'signedBy',
        keyType,
        ...('keyPath' in v ? { keyPath: str(v.keyPath, `${at}.keyPath`) } : {}),
        ...('keyPaths' in v ? { keyPaths: strList(v.keyPaths, `${at}.keyPaths`) } : {}),
        ...('keyData' in v ? { keyData: bytes(v.keyData, `${at}.keyData`) } : {}),
        signedIdentity: 'signedIdentity' in v ? parseSignedIdentity(v.signedIdentity, `${at}.signedIdentity`) : { type: 'matchRepoDigestOrExact' },
      };
    }
    case 'signedBaseLayer':
      checkKeys(v, at, ['type', 'baseLayerIdentity'], ['type', 'baseLayerIdentity']);
      return { type: 'signedBaseLayer', baseLayerIdentity: parseSignedIdentity(v.baseLayerIdentity, `${at}.baseLayerIdentity`) };
    default:
      throw new InvalidPolicyError(`${at}: unknown requirement type ${JSON.stringify(v.type)}`);
  }
}

function parseRequirements(v: unknown, at: string): PolicyRequirement[] {
  if (!Array.isArray(v)) throw new InvalidPolicyError(`${at} must be a list of requirements`);
  if (v.length === 0) throw new InvalidPolicyError(`${at}: the list of requirements must not be empty`);
  return v.map((r, i) => parseRequirement(r, `${at}[${i}]`));
}

/** Transports whose scopes are filesystem paths: absolute, canonical, never "/" itself. */
const PATH_TRANSPORTS = ['oci', 'dir', 'oci-archive', 'docker-archive'];

/** Rejects scopes a transport could never match, as each containers/image transport validates its own. */
export function validateScope(transport: string, scope: string, at: string): void {
  if (scope === '') return;
  if (transport === 'docker') {
    if (scope.includes('*') && !/^\*\.[^*/:]+$/.test(scope)) {
      throw new InvalidPolicyError(`${at}: wildcards are only allowed as a "*." prefix of a host name (e.g. "*.example.com")`);
    }
    return;
  }
  if (PATH_TRANSPORTS.includes(transport)) {
    const path = transport === 'oci' || transport === 'oci-archive' ? scope.split(':')[0]! : scope;
    if (!isAbsolute(path)) throw new InvalidPolicyError(`${at}: scope must be an absolute path`);
    if (path === '/') throw new InvalidPolicyError(`${at}: use the transport default scope "" instead of "/"`);
    if (normalize(path) !== path || path.endsWith('/'))
      throw new InvalidPolicyError(`${at}: scope uses a non-canonical path; perhaps "${normalize(path).replace(/\/$/, '')}"`);
  }
}

/** Policies above 1 MiB are refused before parsing (real ones are a few KiB, keys included). */
export const MAX_POLICY_BYTES = 1024 * 1024;

/** Parses a policy document with containers/image's strictness: anything unknown rejects the whole file. */
export function parsePolicy(text: string, source = 'policy'): Policy {
  const size = Buffer.byteLength(text);
  if (size > MAX_POLICY_BYTES) throw new InvalidPolicyError(`${source}: ${size} bytes exceed the ${MAX_POLICY_BYTES}-byte limit`);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new InvalidPolicyError(`${source} is not valid JSON: ${(err as Error).message}`);
  }
  const dup = findDuplicateKey(text);
  if (dup) throw new InvalidPolicyError(`${source}: duplicated field "${dup.key}" in ${dup.path}`);
  if (!isObject(doc)) throw new InvalidPolicyError(`${source} must be a JSON object`);
  checkKeys(doc, source, ['default', 'transports']);
  if (!('default' in doc)) throw new InvalidPolicyError(`${source}: the "default" policy is missing`);
  const policy: Policy = { default: parseRequirements(doc.default, 'default'), transports: {} };
  if ('transports' in doc) {
    if (!isObject(doc.transports)) throw new InvalidPolicyError('transports must be an object');
    for (const [transport, scopes] of Object.entries(doc.transports)) {
      if (!isObject(scopes)) throw new InvalidPolicyError(`transports.${transport} must be an object of scopes`);
      const out: Record<string, PolicyRequirement[]> = {};
      for (const [scope, reqs] of Object.entries(scopes)) {
        const at = `transports.${transport}[${JSON.stringify(scope)}]`;
        validateScope(transport, scope, at);
        out[scope] = parseRequirements(reqs, at);
      }
      policy.transports[transport] = out;
    }
  }
  return policy;
}

/** Reads and parses a policy file. */
export async function loadPolicy(path: string): Promise<Policy> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new InvalidInputError(`cannot read policy file ${path}: ${(err as Error).message}`);
  }
  return parsePolicy(text, path);
}
