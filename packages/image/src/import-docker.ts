import {
  type Descriptor,
  ImageConfig,
  type Limits,
  layerCompression,
  MagikError,
  MediaTypes,
  parseJsonWith,
  sha256Digest,
} from "@magikrun/spec";
import type { ImageRecord } from "./image-store.ts";
import type { BlobWriter } from "./import-blob-writer.ts";
import type { ImportSource } from "./import-source.ts";
import { formatPlatform } from "./platform.ts";
import { normalizeReference } from "./reference.ts";

const decoder = new TextDecoder();

function sniffLayerType(head: Uint8Array): string {
  if (head[0] === 0x1f && head[1] === 0x8b) return MediaTypes.ociLayerTarGzip;
  if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd)
    return MediaTypes.ociLayerTarZstd;
  return MediaTypes.ociLayerTar;
}

/** `docker save`: manifest.json lists each image's config file, layer files and tags. */
export async function importDockerArchive(
  source: ImportSource,
  options: { reference?: string },
  limits: Limits,
  writer: BlobWriter,
): Promise<ImageRecord[]> {
  const text = decoder.decode(
    await source.read("manifest.json", limits.MAX_MANIFEST_SIZE, "MAX_MANIFEST_SIZE"),
  );
  let entries: { Config?: unknown; RepoTags?: unknown; Layers?: unknown }[];
  try {
    entries = JSON.parse(text);
    if (!Array.isArray(entries)) throw new Error("not an array");
  } catch (err) {
    throw new MagikError(
      "ManifestParseFailed",
      `manifest.json of ${source.description} is invalid: ${(err as Error).message}`,
      {
        details: { source: source.description },
      },
    );
  }
  const records: ImageRecord[] = [];
  for (const entry of entries) {
    if (
      typeof entry?.Config !== "string" ||
      !Array.isArray(entry.Layers) ||
      !entry.Layers.every((l) => typeof l === "string")
    ) {
      throw new MagikError(
        "ManifestParseFailed",
        `manifest.json of ${source.description} has an entry without Config/Layers`,
        {
          details: { source: source.description, entry },
        },
      );
    }
    const tags = Array.isArray(entry.RepoTags)
      ? entry.RepoTags.filter((t): t is string => typeof t === "string")
      : [];
    const references =
      options.reference !== undefined && entries.length === 1
        ? [normalizeReference(options.reference)]
        : tags.map((t) => normalizeReference(t));
    if (references.length === 0) continue;
    const layerNames = entry.Layers as string[];
    if (layerNames.length > limits.MAX_LAYERS) {
      throw new MagikError(
        "ImageTooLarge",
        `the image has more than MAX_LAYERS (${limits.MAX_LAYERS}) layers`,
        {
          details: { limit: "MAX_LAYERS", max: limits.MAX_LAYERS, value: layerNames.length },
        },
      );
    }
    const configBytes = await source.read(entry.Config, limits.MAX_CONFIG_SIZE, "MAX_CONFIG_SIZE");
    const config = parseJsonWith(
      ImageConfig,
      decoder.decode(configBytes),
      "image config",
      "ManifestParseFailed",
    );
    if (config.rootfs.diff_ids.length !== layerNames.length) {
      throw new MagikError(
        "ManifestParseFailed",
        `the config lists ${config.rootfs.diff_ids.length} diff_ids for ${layerNames.length} layers`,
        {
          details: {
            source: source.description,
            diffIds: config.rootfs.diff_ids.length,
            layers: layerNames.length,
          },
        },
      );
    }
    const layers: Descriptor[] = [];
    for (const [i, name] of layerNames.entries()) {
      const mediaType = sniffLayerType(await source.head(name, 4));
      // An uncompressed layer's digest is its diff_id: the config vouches for the content.
      const expected = layerCompression(mediaType) === "none" ? config.rootfs.diff_ids[i] : undefined;
      const stored = await writer.put(source.stream(name), expected, source.size(name));
      layers.push({ mediaType, digest: stored.digest, size: stored.size });
    }
    const configDigest = sha256Digest(configBytes);
    await writer.put(configBytes, configDigest);
    const manifest = {
      schemaVersion: 2,
      mediaType: MediaTypes.ociManifest,
      config: { mediaType: MediaTypes.ociConfig, digest: configDigest, size: configBytes.length },
      layers,
    };
    const manifestBytes = new TextEncoder().encode(JSON.stringify(manifest));
    const manifestDigest = sha256Digest(manifestBytes);
    await writer.put(manifestBytes, manifestDigest);
    for (const reference of references) {
      records.push({
        reference,
        manifestDigest,
        configDigest,
        mediaType: MediaTypes.ociManifest,
        size: manifestBytes.length + configBytes.length + layers.reduce((n, l) => n + l.size, 0),
        platform: formatPlatform(config),
        created: new Date().toISOString(),
      });
    }
  }
  if (records.length === 0) {
    throw new MagikError("InvalidInput", `${source.description} names no image to import`, {
      details: { source: source.description },
      hint: "Give a name with --reference (the archive has no RepoTags).",
    });
  }
  return records;
}
