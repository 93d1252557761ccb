import { lstatSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type Descriptor,
  ImageIndex,
  ImageManifest,
  isIndexMediaType,
  type Limits,
  MagikError,
  parseJsonWith,
  resolveLimits,
  sha256Digest,
} from "@magikrun/spec";
import type { ImageRecord, ImageStore } from "./image-store.ts";
import { BlobWriter } from "./import-blob-writer.ts";
import { importDockerArchive } from "./import-docker.ts";
import { directorySource, type ImportSource, tarFileSource } from "./import-source.ts";
import {
  formatPlatform,
  hostPlatform,
  type PlatformSpec,
  parsePlatform,
  selectPlatform,
} from "./platform.ts";
import { normalizeReference, parseReference, repositoryName } from "./reference.ts";
import { imageConfigOf } from "./wasm-artifact.ts";

export interface ImportOptions {
  store: ImageStore;
  /** Name for the image; required when the layout or archive names none, and overrides a single name. */
  reference?: string;
  platform?: string | PlatformSpec;
  limits?: Partial<Record<keyof Limits, number>>;
}

export interface ImportResult {
  records: ImageRecord[];
  format: "oci-layout" | "oci-archive" | "docker-archive";
}

const decoder = new TextDecoder();
const REF_NAME = "org.opencontainers.image.ref.name";
const CONTAINERD_NAME = "io.containerd.image.name";

/**
 * Imports images from an OCI image layout directory, an OCI archive (a tar of a layout) or a `docker save`
 * archive. Every blob is verified against its digest; on any failure the blobs this import added are removed and
 * no reference is recorded.
 */
export async function importImage(path: string, options: ImportOptions): Promise<ImportResult> {
  const limits = resolveLimits(options.limits ?? {});
  const st = lstatSync(path, { throwIfNoEntry: false });
  if (!st) {
    throw new MagikError("InvalidInput", `${path} does not exist`, { details: { path } });
  }
  const gunzipped = st.isDirectory() ? undefined : await gunzipIfCompressed(path, limits);
  const writer = new BlobWriter(options.store, limits);
  try {
    const source = st.isDirectory() ? directorySource(path) : await tarFileSource(gunzipped ?? path);
    let result: ImportResult;
    if (source.has("index.json") && source.has("oci-layout")) {
      const records = await importOciLayout(source, options, limits, writer);
      result = { records, format: st.isDirectory() ? "oci-layout" : "oci-archive" };
    } else if (source.has("manifest.json")) {
      result = {
        records: await importDockerArchive(source, options, limits, writer),
        format: "docker-archive",
      };
    } else {
      throw new MagikError("InvalidInput", `${path} is neither an OCI image layout nor a docker archive`, {
        details: { path },
        hint: "Expected oci-layout + index.json (OCI) or manifest.json (docker save).",
      });
    }
    await options.store.record(result.records);
    return result;
  } catch (err) {
    await writer.rollback();
    throw err;
  } finally {
    if (gunzipped) rmSync(gunzipped, { force: true });
  }
}

/**
 * `docker save | gzip` archives: decompressed to a temp file first (members are then read in place), refusing
 * more than MAX_ROOTFS_SIZE of output so a gzip bomb cannot fill the disk.
 */
async function gunzipIfCompressed(path: string, limits: Limits): Promise<string | undefined> {
  const magic = await Bun.file(path).slice(0, 2).bytes();
  if (magic[0] !== 0x1f || magic[1] !== 0x8b) return undefined;
  const out = join(tmpdir(), `magikrun-import-${process.pid}-${crypto.randomUUID()}.tar`);
  let total = 0;
  const limit = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      total += chunk.length;
      if (total > limits.MAX_ROOTFS_SIZE) {
        controller.error(
          new MagikError("ImageTooLarge", `${path} decompresses to more than MAX_ROOTFS_SIZE`, {
            details: { path, limit: "MAX_ROOTFS_SIZE", max: limits.MAX_ROOTFS_SIZE },
          }),
        );
        return;
      }
      controller.enqueue(chunk);
    },
  });
  try {
    const stream = Bun.file(path)
      .stream()
      .pipeThrough(new DecompressionStream("gzip") as unknown as TransformStream<Uint8Array, Uint8Array>)
      .pipeThrough(limit);
    await Bun.write(out, new Response(stream));
    return out;
  } catch (err) {
    rmSync(out, { force: true });
    if (err instanceof MagikError) throw err;
    throw new MagikError("InvalidInput", `${path} is not a valid gzip archive: ${(err as Error).message}`, {
      details: { path },
    });
  }
}

function platformOf(options: ImportOptions): PlatformSpec {
  return typeof options.platform === "string"
    ? parsePlatform(options.platform)
    : (options.platform ?? hostPlatform());
}

/** Reads a blob of the layout by descriptor, checking size and digest. */
async function readDescribed(
  source: ImportSource,
  d: Descriptor,
  max: number,
  limit: string,
): Promise<Uint8Array> {
  const name = `blobs/${d.digest.replace(":", "/")}`;
  const bytes = await source.read(name, max, limit);
  const actual = sha256Digest(bytes);
  if (actual !== d.digest || bytes.length !== d.size) {
    throw new MagikError("DigestMismatch", `${name} in ${source.description} does not match its descriptor`, {
      details: { expected: d.digest, actual, expectedSize: d.size, actualSize: bytes.length },
    });
  }
  return bytes;
}

function referenceFor(d: Descriptor, options: ImportOptions, single: boolean): string | undefined {
  const given = options.reference;
  // A name with a tag or digest names the image outright; a bare repository may take the layout's tag.
  if (given !== undefined && single && /(:[^/]*|@.*)$/.test(given)) return normalizeReference(given);
  const full = d.annotations?.[CONTAINERD_NAME];
  const name = d.annotations?.[REF_NAME];
  if (full) return normalizeReference(full);
  if (name && /[/:@]/.test(name)) return normalizeReference(name);
  if (given === undefined) return undefined;
  // A bare tag, as `skopeo copy … oci:dir:tag` writes: it takes its repository from the caller.
  if (name) return normalizeReference(`${repositoryName(parseReference(given))}:${name}`);
  return single ? normalizeReference(given) : undefined;
}

async function importOciLayout(
  source: ImportSource,
  options: ImportOptions,
  limits: Limits,
  writer: BlobWriter,
): Promise<ImageRecord[]> {
  const header = JSON.parse(decoder.decode(await source.read("oci-layout", 4096, "oci-layout"))) as {
    imageLayoutVersion?: unknown;
  };
  if (typeof header?.imageLayoutVersion !== "string") {
    throw new MagikError("InvalidInput", `${source.description}: oci-layout has no imageLayoutVersion`, {
      details: { source: source.description },
    });
  }
  const indexBytes = await source.read("index.json", limits.MAX_MANIFEST_SIZE, "MAX_MANIFEST_SIZE");
  const index = parseJsonWith(ImageIndex, decoder.decode(indexBytes), "index.json", "ManifestParseFailed");
  const records: ImageRecord[] = [];
  for (const top of index.manifests) {
    const reference = referenceFor(top, options, index.manifests.length === 1);
    if (reference === undefined) continue;
    let manifestDescriptor = top;
    let indexDigest: string | undefined;
    if (isIndexMediaType(top.mediaType)) {
      const nested = await readDescribed(source, top, limits.MAX_MANIFEST_SIZE, "MAX_MANIFEST_SIZE");
      const child = parseJsonWith(ImageIndex, decoder.decode(nested), "image index", "ManifestParseFailed");
      // As in pulls: without an explicit platform, a wasm entry is taken when none matches this host.
      manifestDescriptor = selectPlatform(
        child.manifests,
        platformOf(options),
        options.platform === undefined ? "fallback" : "exact",
      );
      await writer.put(nested, top.digest);
      indexDigest = top.digest;
    }
    records.push(await importManifest(source, manifestDescriptor, reference, indexDigest, limits, writer));
  }
  if (records.length === 0) {
    throw new MagikError("InvalidInput", `${source.description} names no image to import`, {
      details: { source: source.description, manifests: index.manifests.length },
      hint: "Give a name with --reference (the layout has no usable ref.name annotations).",
    });
  }
  return records;
}

async function importManifest(
  source: ImportSource,
  d: Descriptor,
  reference: string,
  indexDigest: string | undefined,
  limits: Limits,
  writer: BlobWriter,
): Promise<ImageRecord> {
  const manifestBytes = await readDescribed(source, d, limits.MAX_MANIFEST_SIZE, "MAX_MANIFEST_SIZE");
  const manifest = parseJsonWith(
    ImageManifest,
    decoder.decode(manifestBytes),
    "image manifest",
    "ManifestParseFailed",
  );
  if (manifest.layers.length > limits.MAX_LAYERS) {
    throw new MagikError(
      "ImageTooLarge",
      `the image has more than MAX_LAYERS (${limits.MAX_LAYERS}) layers`,
      {
        details: { limit: "MAX_LAYERS", max: limits.MAX_LAYERS, value: manifest.layers.length },
      },
    );
  }
  const configBytes = await readDescribed(source, manifest.config, limits.MAX_CONFIG_SIZE, "MAX_CONFIG_SIZE");
  // A wasm artifact's config is not an image config: an ImageConfig is synthesized from it (wasm-artifact.ts).
  const config = imageConfigOf(manifest, configBytes, reference);
  for (const layer of manifest.layers) {
    const name = `blobs/${layer.digest.replace(":", "/")}`;
    await writer.put(source.stream(name), layer.digest, layer.size);
  }
  await writer.put(configBytes, manifest.config.digest);
  await writer.put(manifestBytes, d.digest);
  return {
    reference,
    manifestDigest: d.digest,
    configDigest: manifest.config.digest,
    mediaType: manifest.mediaType ?? d.mediaType,
    size: manifestBytes.length + configBytes.length + manifest.layers.reduce((n, l) => n + l.size, 0),
    platform: formatPlatform(config),
    created: new Date().toISOString(),
    ...(indexDigest ? { indexDigest } : {}),
  };
}
