import { describe, expect, it } from 'vitest';
import { convertImageManifest } from '../../src/copy/convert.js';
import type { ImageManifest } from '../../src/oci/manifest.js';
import { MediaType } from '../../src/oci/mediatype.js';

const digest = (c: string) => `sha256:${c.repeat(64)}` as `sha256:${string}`;

/** A manifest as a local build keeps it: a gzip base layer under a plain one. */
function manifest(docker: boolean): ImageManifest {
  return {
    schemaVersion: 2,
    mediaType: docker ? MediaType.DockerManifest : MediaType.OciManifest,
    config: { mediaType: docker ? MediaType.DockerConfig : MediaType.OciConfig, digest: digest('a'), size: 10 },
    layers: [
      { mediaType: docker ? MediaType.DockerLayerGzip : MediaType.OciLayerGzip, digest: digest('b'), size: 20 },
      { mediaType: docker ? MediaType.DockerLayer : MediaType.OciLayer, digest: digest('c'), size: 30 },
    ],
  };
}

describe('manifest format conversion', () => {
  it('maps plain (uncompressed) layers between Docker and OCI, keeping digests', () => {
    const toOci = JSON.parse(convertImageManifest(manifest(true), 'oci').bytes.toString());
    expect(toOci.layers.map((l: { mediaType: string }) => l.mediaType)).toEqual([MediaType.OciLayerGzip, MediaType.OciLayer]);
    const toDocker = JSON.parse(convertImageManifest(manifest(false), 'v2s2').bytes.toString());
    expect(toDocker.layers.map((l: { mediaType: string }) => l.mediaType)).toEqual([MediaType.DockerLayerGzip, MediaType.DockerLayer]);
    expect(toDocker.layers.map((l: { digest: string }) => l.digest)).toEqual([digest('b'), digest('c')]);
  });

  it('refuses a layer type with no equivalent, naming it', () => {
    const m = manifest(false);
    m.layers[1] = { ...m.layers[1]!, mediaType: MediaType.OciLayerZstd };
    expect(() => convertImageManifest(m, 'v2s2')).toThrow(/application\/vnd\.oci\.image\.layer\.v1\.tar\+zstd/);
  });
});
