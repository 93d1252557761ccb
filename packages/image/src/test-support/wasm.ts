import { MediaTypes, sha256Digest, WASM_ANNOTATIONS } from "@magikrun/spec";
import { type TarEntry, tarBytes } from "../tar-writer.ts";
import { type FixtureImage, type FixtureLayer, jsonBlob, makeImage, makeLayer } from "./fixture.ts";

/** What wasm image builders (buildah, buildx) annotate images whose entrypoint is a module with. */
const WASM_VARIANT_ANNOTATION = WASM_ANNOTATIONS.variant;

export interface WasmArtifactInput {
  /** Config media type; default application/vnd.wasm.config.v1+json. */
  configMediaType?: string;
  /** The config document; default `{created, architecture: "wasm", os: "wasip1", layerDigests}`. */
  config?: Record<string, unknown>;
  /** Manifest artifactType, when set. */
  artifactType?: string;
}

/** A wasm OCI artifact: one wasm layer (the module itself) under a wasm config. */
export function makeWasmArtifact(module: Uint8Array, input: WasmArtifactInput = {}): FixtureImage {
  const digest = sha256Digest(module);
  const layer: FixtureLayer = {
    mediaType: MediaTypes.wasmLayer,
    bytes: module,
    digest,
    size: module.length,
    diffId: digest,
  };
  const config = jsonBlob(
    input.configMediaType ?? MediaTypes.wasmConfig,
    input.config ?? {
      created: "1970-01-01T00:00:00Z",
      architecture: "wasm",
      os: "wasip1",
      layerDigests: [digest],
    },
  );
  const descriptor = (b: { mediaType: string; digest: string; size: number }) => ({
    mediaType: b.mediaType,
    digest: b.digest,
    size: b.size,
  });
  const manifest = jsonBlob(MediaTypes.ociManifest, {
    schemaVersion: 2,
    mediaType: MediaTypes.ociManifest,
    ...(input.artifactType !== undefined ? { artifactType: input.artifactType } : {}),
    config: descriptor(config),
    layers: [descriptor(layer)],
  });
  return { kind: "image", manifest, config, layers: [layer] };
}

/**
 * An ordinary image whose single layer holds the module at `path` (default `app/hello.wasm`) and whose Entrypoint
 * is that file (plus `extra` entries), annotated `module.wasm.image/variant=compat` as wasm image builders do
 * (unless `annotate` is false).
 * Platform `wasi/wasm`.
 */
export function makeWasmCompatImage(
  module: Uint8Array,
  options: { path?: string; config?: Record<string, unknown>; extra?: TarEntry[]; annotate?: boolean } = {},
): FixtureImage {
  const file = options.path ?? "app/hello.wasm";
  const dirs = file.split("/").slice(0, -1);
  const tar = tarBytes([
    ...dirs.map((_, i) => ({ type: "dir" as const, path: dirs.slice(0, i + 1).join("/") })),
    { type: "file", path: file, data: module, mode: 0o755 },
    ...(options.extra ?? []),
  ]);
  const image = makeImage([makeLayer(tar, "gzip", "oci")], {
    architecture: "wasm",
    os: "wasi",
    config: options.config ?? { Entrypoint: [`/${file}`] },
  });
  if (options.annotate === false) return image;
  const doc = JSON.parse(new TextDecoder().decode(image.manifest.bytes)) as Record<string, unknown>;
  doc.annotations = { [WASM_VARIANT_ANNOTATION]: "compat" };
  return { ...image, manifest: jsonBlob(image.manifest.mediaType, doc) };
}
