import type { ImageConfig, ImageManifest } from "@magikrun/spec";

/**
 * An image whose manifest and config are in the blob store, as the pull/import side hands it to the unpacking and
 * bundle-building side. Layer blobs are `manifest.layers`, in order; their uncompressed digests are
 * `config.rootfs.diff_ids`, in the same order.
 */
export interface ResolvedImage {
  /** Canonical reference (e.g. `docker.io/library/busybox:latest`), when the image came from one. */
  reference?: string;
  manifestDigest: string;
  manifest: ImageManifest;
  configDigest: string;
  config: ImageConfig;
}

/**
 * On-disk layout under the magikrun root (the BlobStore's root):
 *   blobs/sha256/<2 hex>/<hex>   content-addressed blobs (packages/storage)
 *   images/index.json            references -> manifest digests
 *   layers/sha256/<hex>/         unpacked layers, keyed by chain id (a layer is unpacked against those below it)
 *   rootfs/<id>/                 assembled container root filesystems (overlay mountpoints or copies)
 *   bundles/<id>/                bundles built for containers
 */
export const LAYOUT = {
  images: "images",
  layers: "layers",
  rootfs: "rootfs",
  bundles: "bundles",
} as const;
