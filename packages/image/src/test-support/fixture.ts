import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { MediaTypes, sha256Digest } from "@magikrun/spec";

/**
 * Images built in memory for tests: every blob with its bytes and digest, so a test can push them, write them as an
 * OCI layout or archive, or serve them with faults, and know the expected digests.
 */
export interface FixtureBlob {
  mediaType: string;
  digest: string;
  size: number;
  bytes: Uint8Array;
}

export interface FixtureLayer extends FixtureBlob {
  /** Digest of the uncompressed tar. */
  diffId: string;
}

export interface FixtureImage {
  kind: "image";
  manifest: FixtureBlob;
  config: FixtureBlob;
  layers: FixtureLayer[];
}

export interface FixtureIndex {
  kind: "index";
  index: FixtureBlob;
  images: FixtureImage[];
}

export type Fixture = FixtureImage | FixtureIndex;

export type LayerCompressionKind = "none" | "gzip" | "zstd";

const encoder = new TextEncoder();

export function jsonBlob(mediaType: string, value: unknown): FixtureBlob {
  const bytes = encoder.encode(JSON.stringify(value));
  return { mediaType, bytes, digest: sha256Digest(bytes), size: bytes.length };
}

/** Compresses an uncompressed tar into a layer blob (gzip header mtime is 0, so digests are stable). */
export function makeLayer(
  tar: Uint8Array,
  compression: LayerCompressionKind,
  format: "oci" | "docker",
): FixtureLayer {
  const diffId = sha256Digest(tar);
  let bytes: Uint8Array = tar;
  let mediaType: string = MediaTypes.ociLayerTar;
  if (compression === "gzip") {
    bytes = Bun.gzipSync(tar as Uint8Array<ArrayBuffer>, { level: 6 });
    mediaType = format === "docker" ? MediaTypes.dockerLayerTarGzip : MediaTypes.ociLayerTarGzip;
  } else if (compression === "zstd") {
    bytes = Bun.zstdCompressSync(tar as Uint8Array<ArrayBuffer>, { level: 3 });
    mediaType = MediaTypes.ociLayerTarZstd;
  }
  return { mediaType, bytes, digest: sha256Digest(bytes), size: bytes.length, diffId };
}

export interface ImageConfigInput {
  architecture?: string;
  os?: string;
  variant?: string;
  config?: Record<string, unknown>;
}

/** Assembles config and manifest around layers. */
export function makeImage(
  layers: FixtureLayer[],
  input: ImageConfigInput = {},
  format: "oci" | "docker" = "oci",
): FixtureImage {
  const configDoc: Record<string, unknown> = {
    created: "1970-01-01T00:00:00Z",
    architecture: input.architecture ?? "amd64",
    os: input.os ?? "linux",
    config: input.config ?? { Cmd: ["/bin/sh"], Env: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"] },
    rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) },
    history: layers.map(() => ({ created: "1970-01-01T00:00:00Z", created_by: "magikrun test fixture" })),
  };
  if (input.variant !== undefined) configDoc.variant = input.variant;
  const config = jsonBlob(format === "docker" ? MediaTypes.dockerConfig : MediaTypes.ociConfig, configDoc);
  const descriptor = (b: FixtureBlob) => ({ mediaType: b.mediaType, digest: b.digest, size: b.size });
  const manifestMediaType = format === "docker" ? MediaTypes.dockerManifest : MediaTypes.ociManifest;
  const manifest = jsonBlob(manifestMediaType, {
    schemaVersion: 2,
    mediaType: manifestMediaType,
    config: descriptor(config),
    layers: layers.map(descriptor),
  });
  return { kind: "image", manifest, config, layers };
}

/** A multi-platform index over images, each described with the platform of its config. */
export function makeIndex(images: FixtureImage[], format: "oci" | "docker" = "oci"): FixtureIndex {
  const mediaType = format === "docker" ? MediaTypes.dockerManifestList : MediaTypes.ociIndex;
  const manifests = images.map((img) => {
    const cfg = JSON.parse(new TextDecoder().decode(img.config.bytes)) as {
      architecture: string;
      os: string;
      variant?: string;
    };
    const platform: Record<string, string> = { architecture: cfg.architecture, os: cfg.os };
    if (cfg.variant !== undefined) platform.variant = cfg.variant;
    return {
      mediaType: img.manifest.mediaType,
      digest: img.manifest.digest,
      size: img.manifest.size,
      platform,
    };
  });
  return { kind: "index", index: jsonBlob(mediaType, { schemaVersion: 2, mediaType, manifests }), images };
}

/** Every blob of a fixture (manifests included), deduplicated by digest. */
export function fixtureBlobs(fixture: Fixture): Map<string, FixtureBlob> {
  const out = new Map<string, FixtureBlob>();
  const images = fixture.kind === "index" ? fixture.images : [fixture];
  if (fixture.kind === "index") out.set(fixture.index.digest, fixture.index);
  for (const img of images) {
    out.set(img.manifest.digest, img.manifest);
    out.set(img.config.digest, img.config);
    for (const l of img.layers) out.set(l.digest, l);
  }
  return out;
}

export function topDescriptor(fixture: Fixture): FixtureBlob {
  return fixture.kind === "index" ? fixture.index : fixture.manifest;
}

/** Writes fixtures as an OCI image layout directory, with `org.opencontainers.image.ref.name` annotations. */
export function writeOciLayout(dir: string, entries: { fixture: Fixture; refName?: string }[]): void {
  mkdirSync(join(dir, "blobs", "sha256"), { recursive: true });
  writeFileSync(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  const manifests = [];
  for (const { fixture, refName } of entries) {
    for (const blob of fixtureBlobs(fixture).values()) {
      writeFileSync(join(dir, "blobs", "sha256", blob.digest.slice("sha256:".length)), blob.bytes);
    }
    const top = topDescriptor(fixture);
    manifests.push({
      mediaType: top.mediaType,
      digest: top.digest,
      size: top.size,
      ...(refName !== undefined ? { annotations: { "org.opencontainers.image.ref.name": refName } } : {}),
    });
  }
  writeFileSync(
    join(dir, "index.json"),
    JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests }),
  );
}
