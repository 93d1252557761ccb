/** Every media type magikrun reads or writes, in one place. */
export const MediaTypes = {
  ociIndex: "application/vnd.oci.image.index.v1+json",
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociConfig: "application/vnd.oci.image.config.v1+json",
  ociLayout: "application/vnd.oci.layout.header.v1+json",
  ociLayerTar: "application/vnd.oci.image.layer.v1.tar",
  ociLayerTarGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  ociLayerTarZstd: "application/vnd.oci.image.layer.v1.tar+zstd",
  ociLayerNondistributableTar: "application/vnd.oci.image.layer.nondistributable.v1.tar",
  ociLayerNondistributableTarGzip: "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
  ociLayerNondistributableTarZstd: "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
  ociEmpty: "application/vnd.oci.empty.v1+json",
  dockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerConfig: "application/vnd.docker.container.image.v1+json",
  dockerLayerTarGzip: "application/vnd.docker.image.rootfs.diff.tar.gzip",
  dockerForeignLayerTarGzip: "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
  wasmLayer: "application/vnd.wasm.content.layer.v1+wasm",
  wasmConfig: "application/vnd.wasm.config.v1+json",
} as const;

export type MediaType = (typeof MediaTypes)[keyof typeof MediaTypes];

/** What a registry is asked for: every manifest kind magikrun can read. */
export const MANIFEST_ACCEPT = [
  MediaTypes.ociIndex,
  MediaTypes.ociManifest,
  MediaTypes.dockerManifestList,
  MediaTypes.dockerManifest,
].join(", ");

export type LayerCompression = "none" | "gzip" | "zstd";

const LAYER_COMPRESSION: Record<string, LayerCompression> = {
  [MediaTypes.ociLayerTar]: "none",
  [MediaTypes.ociLayerNondistributableTar]: "none",
  [MediaTypes.ociLayerTarGzip]: "gzip",
  [MediaTypes.ociLayerNondistributableTarGzip]: "gzip",
  [MediaTypes.dockerLayerTarGzip]: "gzip",
  [MediaTypes.dockerForeignLayerTarGzip]: "gzip",
  [MediaTypes.ociLayerTarZstd]: "zstd",
  [MediaTypes.ociLayerNondistributableTarZstd]: "zstd",
};

/** Compression of a filesystem layer media type, or undefined when it is not a tar layer. */
export function layerCompression(mediaType: string): LayerCompression | undefined {
  // Own keys only: a registry-supplied "toString" or "constructor" must not find Object.prototype's members.
  return Object.hasOwn(LAYER_COMPRESSION, mediaType) ? LAYER_COMPRESSION[mediaType] : undefined;
}

export function isIndexMediaType(mediaType: string | undefined): boolean {
  return mediaType === MediaTypes.ociIndex || mediaType === MediaTypes.dockerManifestList;
}

export function isManifestMediaType(mediaType: string | undefined): boolean {
  return mediaType === MediaTypes.ociManifest || mediaType === MediaTypes.dockerManifest;
}
