import type { Readable } from 'node:stream';
import type { Descriptor } from '../oci/descriptor.js';
import type { Digest } from '../oci/digest.js';
import type { RawManifest } from '../oci/manifest.js';
import type { RetryPolicy } from '../util/retry.js';
import type { ImageReference } from '../oci/reference.js';
import type { RegistryClient } from '../registry/client.js';

/**
 * Where an image lives is a transport: a registry (`docker://`), an OCI layout (`oci:`), an archive
 * (`oci-archive:`, `docker-archive:`) or a plain directory (`dir:`). Each one reads through an
 * ImageSource and writes through an ImageDestination; the copy engine only speaks these two.
 */

export interface OpOptions {
  signal?: AbortSignal;
}

/** Reads one image (or index) and its blobs. Everything it returns is verified against its digest. */
export interface ImageSource {
  /** Transport-qualified name for messages, e.g. `docker://localhost:5000/app:1.0`. */
  readonly name: string;
  /**
   * The manifest the reference names (no digest) or a child manifest by digest. Bytes are exactly
   * as stored, checked against the digest and capped at 4 MiB.
   */
  getManifest(digest?: Digest, opts?: OpOptions): Promise<RawManifest>;
  /**
   * A stream of the blob's bytes. The stream is verified as it flows: if the bytes do not match
   * `desc.digest`/`desc.size` it errors instead of ending, so nothing downstream commits them.
   */
  getBlob(desc: Descriptor, opts?: OpOptions): Promise<Readable>;
  /** Tags in the source's repository, where the transport has a notion of tags. */
  listTags?(opts?: OpOptions): Promise<string[]>;
  /** Where the blobs come from, when that lets a destination on the same registry mount instead of copy. */
  readonly location?: { registry: string; repository: string };
  /** Digest of what the reference names, as cheaply as the transport can tell (a registry: one HEAD). */
  currentDigest?(opts?: OpOptions): Promise<Digest | undefined>;
  /** Where signatures, attestations and referrers of its images live, when the transport has them (a registry repository). */
  readonly attachmentStore?: AttachmentStore;
  /** The OCI layout directory behind this source (oci:, an oci-archive:'s extraction): attachments are ref names there. */
  readonly layoutDir?: string;
  close(): Promise<void>;
}

/**
 * The capability to hold attachments (cosign `.sig`/`.att`/`.sbom` tags, OCI referrers): a registry
 * repository and the client that reaches it. A copy carries attachments when both ends have one.
 */
export interface AttachmentStore {
  client: RegistryClient;
  ref: ImageReference;
}

export interface PutManifestOptions extends OpOptions {
  /**
   * True for the manifest the destination reference names (tagged or recorded in index.json);
   * false for children of an index, which are stored by digest only.
   */
  top: boolean;
}

export interface ReuseOptions extends OpOptions {
  /** The source's registry location, so a destination on the same registry can mount the blob. */
  from?: { registry: string; repository: string };
}

/**
 * Writes one image (or index). Blobs first, manifests after, the top manifest last: until
 * `commit()` nothing the destination reference names points at missing content.
 */
export interface ImageDestination {
  readonly name: string;
  /** Media types of manifests this destination can store; the copy engine converts or refuses otherwise. */
  readonly supportedManifestTypes?: readonly string[];
  /** True when the blob is already there, or was made present without upload (cross-repository mount). */
  tryReuseBlob(desc: Descriptor, opts?: ReuseOptions): Promise<boolean>;
  /** Stores a blob from a stream. Fails (and stores nothing) if the bytes do not match `desc`. */
  putBlob(desc: Descriptor, stream: Readable, opts?: OpOptions): Promise<void>;
  putManifest(manifest: RawManifest, opts: PutManifestOptions): Promise<void>;
  /** Digest of the manifest the destination reference names now, if any (for skip-unchanged). */
  currentDigest?(opts?: OpOptions): Promise<Digest | undefined>;
  /** Where attachments of the written images go, when the transport can hold them (see AttachmentStore). */
  readonly attachmentStore?: AttachmentStore;
  /**
   * The OCI layout directory this destination writes (oci:, an oci-archive:'s scratch layout, tarred
   * on commit): attachments go there as ref names before commit (copy/layout-attachments.ts).
   */
  readonly layoutDir?: string;
  /**
   * `compress`: uncompressed tar layers are gzip-compressed on the way in (a registry: skopeo's
   * behaviour, half the bytes of a push from a docker archive); the image gets a new manifest digest.
   * Absent: layers are stored as they come.
   */
  readonly desiredLayerCompression?: 'compress';
  /** Makes the written image visible (archives are renamed into place here). */
  commit(opts?: OpOptions): Promise<void>;
  /** Releases resources; an uncommitted destination discards what it wrote. */
  close(): Promise<void>;
}

/** Shared settings of a whole operation, as containers/image's SystemContext. */
export interface TransportContext {
  /** Verify TLS certificates (true) or allow self-signed and plain HTTP (false). Default: true, loopback exempt. */
  tlsVerify?: boolean;
  /** Explicit `user:password` credentials; otherwise the auth file is consulted. */
  credentials?: { username: string; password: string };
  /** Path of a docker `config.json` / containers `auth.json`; default: the usual locations. */
  authFile?: string;
  /**
   * Whether the process's own auth files ($REGISTRY_AUTH_FILE, containers auth.json, Docker's
   * config.json) may supply credentials when `credentials` is not given. Default true (a CLI user's
   * `stevedore login` works); the controller and the node agent set false, so a tenant's object that
   * names no Secret never borrows the credentials of the process serving it (a confused deputy).
   */
  ambientCredentials?: boolean;
  /** Where temporary data of archive transports is kept; default: the OS temp dir. */
  tmpDir?: string;
  /** containers-certs.d(5) directory for the registry (CA `*.crt`, client `*.cert`/`*.key`); default: certs.d lookup by host. */
  certDir?: string;
  /** Retry policy of registry requests (skopeo's --retry-times/--retry-delay); default util/retry's DEFAULT_RETRY. */
  retry?: Partial<RetryPolicy>;
  /** containers-registries.d directory (lookaside signature storage); default as containers/image finds it. */
  registriesDir?: string;
  /**
   * Registry clients shared by every source and destination opened with this context, so their
   * connections and bearer tokens are reused (a sync opens hundreds). A pooled client is closed with
   * the pool, not with the source or destination. Default: each opens and closes a client of its own.
   */
  clients?: RegistryClientPool;
}

/** Hands out one registry client per registry and context settings, kept until the pool closes (transports/docker.ts: RegistryClients). */
export interface RegistryClientPool {
  client(ref: ImageReference, ctx: TransportContext): RegistryClient;
}

/** A parsed `transport:details` image name that can open a source or a destination. */
export interface TransportReference {
  readonly transport: string;
  /** The full name, round-trippable through parseImageName. */
  toString(): string;
  newSource(ctx?: TransportContext): Promise<ImageSource>;
  newDestination(ctx?: TransportContext): Promise<ImageDestination>;
}
