import { describe, expect, it } from "vitest";
import {
  isIndexMediaType,
  isManifestMediaType,
  layerCompression,
  MANIFEST_ACCEPT,
  MediaTypes,
} from "./media-types.ts";

describe("media types", () => {
  it("knows the compression of every tar layer type, and nothing else", () => {
    expect(layerCompression(MediaTypes.ociLayerTar)).toBe("none");
    expect(layerCompression(MediaTypes.ociLayerNondistributableTar)).toBe("none");
    expect(layerCompression(MediaTypes.ociLayerTarGzip)).toBe("gzip");
    expect(layerCompression(MediaTypes.ociLayerNondistributableTarGzip)).toBe("gzip");
    expect(layerCompression(MediaTypes.dockerLayerTarGzip)).toBe("gzip");
    expect(layerCompression(MediaTypes.dockerForeignLayerTarGzip)).toBe("gzip");
    expect(layerCompression(MediaTypes.ociLayerTarZstd)).toBe("zstd");
    expect(layerCompression(MediaTypes.ociLayerNondistributableTarZstd)).toBe("zstd");
    expect(layerCompression(MediaTypes.wasmLayer)).toBeUndefined();
    expect(layerCompression(MediaTypes.ociConfig)).toBeUndefined();
    expect(layerCompression("toString")).toBeUndefined();
  });

  it("tells indexes from manifests, OCI and Docker alike", () => {
    expect(isIndexMediaType(MediaTypes.ociIndex)).toBe(true);
    expect(isIndexMediaType(MediaTypes.dockerManifestList)).toBe(true);
    expect(isIndexMediaType(MediaTypes.ociManifest)).toBe(false);
    expect(isIndexMediaType(undefined)).toBe(false);
    expect(isManifestMediaType(MediaTypes.ociManifest)).toBe(true);
    expect(isManifestMediaType(MediaTypes.dockerManifest)).toBe(true);
    expect(isManifestMediaType(MediaTypes.dockerManifestList)).toBe(false);
    expect(isManifestMediaType(undefined)).toBe(false);
  });

  it("asks registries for every manifest kind it can read", () => {
    expect(MANIFEST_ACCEPT.split(", ").sort()).toEqual(
      [
        MediaTypes.ociIndex,
        MediaTypes.ociManifest,
        MediaTypes.dockerManifestList,
        MediaTypes.dockerManifest,
      ].sort(),
    );
  });
});
