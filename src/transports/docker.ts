import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Descriptor } from '../oci/descriptor.js';
import type { Digest } from '../oci/digest.js';
import type { RawManifest } from '../oci/manifest.js';
import { formatReference, parseReference, referenceTarget, type ImageReference } from '../oci/reference.js';
import { getBlob, headBlob, mountBlob, uploadBlob } from '../registry/blobs.js';
import { RegistryClient } from '../registry/client.js';
import { contextCredentials } from '../registry/credentials.js';
import { getManifest, headManifest, putManifest } from '../registry/manifests.js';
import { listTags } from '../registry/tags.js';
import { DigestMismatchError, InvalidInputError } from '../util/errors.js';
import type {
  AttachmentStore,
  ImageDestination,
  ImageSource,
  OpOptions,
  PutManifestOptions,
  RegistryClientPool,
  ReuseOptions,
  TransportContext,
  TransportReference,
} from './types.js';

/** Opens a registry client with the context's credentials, or those of the usual auth files, found lazily. */
export function registryClientFor(ref: ImageReference, ctx: TransportContext = {}): RegistryClient {
  return new RegistryClient({
    registry: ref.registry,
    tlsVerify: ctx.tlsVerify,
    credentials: contextCredentials(ctx, ref.registry, ref.repository),
    ...(ctx.retry ? { retry: ctx.retry } : {}),
    ...(ctx.certDir ? { certDir: ctx.certDir } : {}),
    loginHint: ctx.ambientCredentials !== false,
  });
}

/**
 * One client per registry and context settings for as long as the pool lives: sources and
 * destinations opened with `{ clients: pool }` share its connections and bearer tokens (sync opens
 * hundreds). The first repository's auth-file lookup serves the registry, as one client always did.
 */
export class RegistryClients implements RegistryClientPool {
  readonly #clients = new Map<string, RegistryClient>();

  client(ref: ImageReference, ctx: TransportContext): RegistryClient {
    // Everything registryClientFor reads from the context: two contexts that differ only in a
    // password or retry policy must not share a client (the password enters the key as a hash).
    const secret = ctx.credentials?.password === undefined ? '' : createHash('sha256').update(ctx.credentials.password).digest('hex');
    const key = JSON.stringify([
      ref.registry,
      ctx.tlsVerify,
      ctx.credentials?.username ?? '',
      secret,
      ctx.certDir ?? '',
      ctx.ambientCredentials !== false,
      ctx.authFile ?? '',
      ctx.retry ?? null,
    ]);
    let c = this.#clients.get(key);
    if (!c) this.#clients.set(key, (c = registryClientFor(ref, ctx)));
    return c;
  }

  async close(): Promise<void> {
    await Promise.all([...this.#clients.values()].map((c) => c.close()));
  }
}

/** The context's pooled client (not owned) or a client of its own (owned: closed with its user). */
function clientFor(ref: ImageReference, ctx: TransportContext): { client: RegistryClient; owned: boolean } {
  const pooled = ctx.clients?.client(ref, ctx);
  return pooled ? { client: pooled, owned: false } : { client: registryClientFor(ref, ctx), owned: true };
}

/** `docker://registry/repository[:tag][@digest]`: an image in an OCI distribution registry. */
export class DockerReference implements TransportReference {
  readonly transport = 'docker';
  readonly ref: ImageReference;

  constructor(ref: ImageReference) {
    this.ref = ref;
  }

  toString(): string {
    return `docker://${formatReference(this.ref)}`;
  }

  async newSource(ctx: TransportContext = {}): Promise<DockerSource> {
    const { client, owned } = clientFor(this.ref, ctx);
    return new DockerSource(this.ref, client, owned);
  }

  async newDestination(ctx: TransportContext = {}): Promise<DockerDestination> {
    const { client, owned } = clientFor(this.ref, ctx);
    return new DockerDestination(this.ref, client, owned);
  }
}

/** Parses what follows `docker:`; it must start with `//`, as in skopeo. */
export function parseDockerReference(rest: string): DockerReference {
  if (!rest.startsWith('//')) throw new InvalidInputError(`invalid image name "docker:${rest}": expected docker://REGISTRY/REPOSITORY[:TAG]`);
  return new DockerReference(parseReference(rest.slice(2)));
}

export class DockerSource implements ImageSource {
  readonly name: string;
  readonly location: { registry: string; repository: string };
  readonly attachmentStore: AttachmentStore;
  readonly #ref: ImageReference;
  readonly client: RegistryClient;
  readonly #ownsClient: boolean;

  /** `ownsClient: false` lets many sources share one client (its connections and tokens), as sync does. */
  constructor(ref: ImageReference, client: RegistryClient, ownsClient = true) {
    this.#ref = ref;
    this.client = client;
    this.#ownsClient = ownsClient;
    this.name = `docker://${formatReference(ref)}`;
    this.location = { registry: ref.registry, repository: ref.repository };
    this.attachmentStore = { client, ref };
  }

  getManifest(digest?: Digest, opts: OpOptions = {}): Promise<RawManifest> {
    return getManifest(this.client, this.#ref.repository, digest ?? referenceTarget(this.#ref), opts);
  }

  async getBlob(desc: Descriptor, opts: OpOptions = {}): Promise<Readable> {
    const stream = await getBlob(this.client, this.#ref.repository, desc, opts);
    this.client.blobLocations.add(desc.digest, this.#ref.repository);
    return stream;
  }

  listTags(opts: OpOptions = {}): Promise<string[]> {
    return listTags(this.client, this.#ref.repository, opts);
  }

  /** Digest of what the reference names, from a HEAD request (no manifest download, no pull spent). */
  async currentDigest(opts: OpOptions = {}): Promise<Digest | undefined> {
    return (await headManifest(this.client, this.#ref.repository, referenceTarget(this.#ref), opts))?.digest;
  }

  async close(): Promise<void> {
    if (this.#ownsClient) await this.client.close();
  }
}

export class DockerDestination implements ImageDestination {
  readonly name: string;
  readonly attachmentStore: AttachmentStore;
  readonly desiredLayerCompression = 'compress' as const;
  readonly #ref: ImageReference;
  readonly client: RegistryClient;
  readonly #ownsClient: boolean;

  constructor(ref: ImageReference, client: RegistryClient, ownsClient = true) {
    this.#ref = ref;
    this.client = client;
    this.#ownsClient = ownsClient;
    this.name = `docker://${formatReference(ref)}`;
    this.attachmentStore = { client, ref };
  }

  /**
   * Reuse before upload, in containers/image's order: the blob is already in this repository
   * (HEAD), or another repository of the same registry has it and the registry links it (mount).
   */
  async tryReuseBlob(desc: Descriptor, opts: ReuseOptions = {}): Promise<boolean> {
    const repo = this.#ref.repository;
    const known = this.client.blobLocations;
    const size = await headBlob(this.client, repo, desc.digest, opts);
    if (size !== undefined && (size < 0 || size === desc.size)) {
      known.add(desc.digest, repo);
      return true;
    }
    // Mount candidates: the source's repository on this registry, then repositories of this
    // registry that this client has seen holding the blob (another image of the same sync).
    const from = opts.from && opts.from.registry === this.#ref.registry && opts.from.repository !== repo ? [opts.from.repository] : [];
    for (const other of known.candidates(desc.digest, repo)) if (!from.includes(other)) from.push(other);
    for (const other of from.slice(0, 3)) {
      if (await mountBlob(this.client, repo, desc.digest, other, opts)) {
        known.add(desc.digest, repo);
        return true;
      }
      known.remove(desc.digest, other);
    }
    return false;
  }

  /**
   * ImageSource streams arrive verified and the registry checks the digest again on the final PUT,
   * so the upload does not hash the bytes a third time.
   */
  async putBlob(desc: Descriptor, stream: Readable, opts: OpOptions = {}): Promise<void> {
    await uploadBlob(this.client, this.#ref.repository, desc, stream, { ...opts, sourceVerified: true });
    this.client.blobLocations.add(desc.digest, this.#ref.repository);
  }

  async putManifest(manifest: RawManifest, opts: PutManifestOptions): Promise<void> {
    let reference: string = manifest.digest;
    if (opts.top) {
      if (this.#ref.digest && this.#ref.digest !== manifest.digest) {
        throw new DigestMismatchError(`destination ${this.name}`, this.#ref.digest, manifest.digest);
      }
      reference = this.#ref.tag ?? (this.#ref.digest ? manifest.digest : 'latest');
    }
    await putManifest(this.client, this.#ref.repository, reference, manifest, opts);
  }

  async currentDigest(opts: OpOptions = {}): Promise<Digest | undefined> {
    return (await headManifest(this.client, this.#ref.repository, referenceTarget(this.#ref), opts))?.digest;
  }

  /** A registry makes the image visible with the top manifest's PUT, which the copy sends last. */
  async commit(_opts?: OpOptions): Promise<void> {}

  async close(): Promise<void> {
    if (this.#ownsClient) await this.client.close();
  }
}
