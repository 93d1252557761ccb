import {
  type ImageConfig,
  ImageConfig as ImageConfigSchema,
  type ImageManifest,
  MagikError,
  MediaTypes,
  parseJsonWith,
} from "@magikrun/spec";

/**
 * WebAssembly OCI artifacts: a manifest whose layers are wasm modules (`application/vnd.wasm.content.layer.v1+wasm`)
 * and whose config is a wasm config (`application/vnd.wasm.config.v1+json`) or the OCI empty config, not an image
 * config. The pull and import side stores them like images; what it hands over is an ImageConfig synthesized from
 * the wasm config, so everything downstream keeps one type:
 *   - `os`/`architecture` from the wasm config when it has them, else `wasip1`/`wasm`;
 *   - `config` (Entrypoint, Cmd, Env, WorkingDir) from the wasm config's `config` object when it has one;
 *   - `rootfs.diff_ids` empty: a wasm layer is not a filesystem layer, so the layer cache (which skips wasm layers)
 *     never unpacks one as tar, and an assembled rootfs of an artifact is empty.
 */

/** The wasm config as read: an image config with every field optional (unknown fields such as layerDigests pass). */
const WasmConfigDocument = ImageConfigSchema.omit({ rootfs: true, history: true }).partial();

export const WASM_DEFAULT_PLATFORM = { os: "wasip1", architecture: "wasm" } as const;

/** Whether a manifest is a wasm artifact (by its config media type, artifactType, or wasm layers over an empty config). */
export function isWasmArtifact(manifest: ImageManifest): boolean {
  if (manifest.config.mediaType === MediaTypes.wasmConfig) return true;
  if (manifest.artifactType === MediaTypes.wasmConfig || manifest.artifactType === MediaTypes.wasmLayer) {
    return true;
  }
  return (
    manifest.config.mediaType === MediaTypes.ociEmpty &&
    manifest.layers.some((l) => l.mediaType === MediaTypes.wasmLayer)
  );
}

/**
 * The ImageConfig of a wasm artifact, from its config blob. ManifestParseFailed when the artifact has no wasm
 * layer or has layers that are not wasm modules (nothing here could run them).
 */
export function wasmArtifactConfig(
  manifest: ImageManifest,
  configBytes: Uint8Array,
  reference: string,
): ImageConfig {
  const layerTypes = manifest.layers.map((l) => l.mediaType);
  const others = layerTypes.filter((t) => t !== MediaTypes.wasmLayer);
  if (layerTypes.length === 0 || others.length > 0) {
    throw new MagikError(
      "ManifestParseFailed",
      layerTypes.length === 0
        ? `the wasm artifact ${reference} has no wasm layer`
        : `the wasm artifact ${reference} has layers that are not wasm modules`,
      {
        details: { reference, layers: layerTypes },
        hint: `A wasm artifact's layers are ${MediaTypes.wasmLayer}; images with filesystem layers use an image config.`,
      },
    );
  }
  const text = new TextDecoder().decode(configBytes);
  const doc = parseJsonWith(
    WasmConfigDocument,
    text.trim() === "" ? "{}" : text,
    "wasm config",
    "ManifestParseFailed",
  );
  const config: ImageConfig = {
    architecture: doc.architecture ?? WASM_DEFAULT_PLATFORM.architecture,
    os: doc.os ?? WASM_DEFAULT_PLATFORM.os,
    config: doc.config,
    rootfs: { type: "layers", diff_ids: [] },
  };
  if (doc.created !== undefined) config.created = doc.created;
  if (doc.author !== undefined) config.author = doc.author;
  if (doc.variant !== undefined) config.variant = doc.variant;
  return config;
}

/** The ImageConfig of any manifest the store holds: parsed image config, or synthesized for a wasm artifact. */
export function imageConfigOf(
  manifest: ImageManifest,
  configBytes: Uint8Array,
  reference: string,
): ImageConfig {
  if (isWasmArtifact(manifest)) return wasmArtifactConfig(manifest, configBytes, reference);
  return parseJsonWith(
    ImageConfigSchema,
    new TextDecoder().decode(configBytes),
    "image config",
    "ManifestParseFailed",
  );
}
