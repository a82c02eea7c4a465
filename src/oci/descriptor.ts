import type { Digest } from './digest.js';
import type { Platform } from './platform.js';

/** An OCI content descriptor: what a manifest or index says about one blob or manifest. */
export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  data?: string;
  artifactType?: string;
  platform?: Platform;
}

/** Well-known annotation keys. */
export const Annotation = {
  RefName: 'org.opencontainers.image.ref.name',
  Created: 'org.opencontainers.image.created',
  /** containerd/skopeo convention: the full image name an index.json entry belongs to. */
  ImageName: 'io.containerd.image.name',
} as const;
