import {
  type Descriptor,
  ImageIndex,
  ImageManifest,
  isIndexMediaType,
  isManifestMediaType,
  type Limits,
  layerCompression,
  MagikError,
  MediaTypes,
  parseJsonWith,
  resolveLimits,
} from "@magikrun/spec";
import type { RegistryCredentials } from "./docker-config.ts";
import type { ImageRecord, ImageStore } from "./image-store.ts";
import {
  formatPlatform,
  hostPlatform,
  type PlatformSpec,
  parsePlatform,
  selectPlatform,
  type WasmPlatformRule,
} from "./platform.ts";
import { downloadBlob, type LayerProgress } from "./pull-blob.ts";
import { formatReference, manifestSelector, parseReference } from "./reference.ts";
import { RegistryClient } from "./registry/client.ts";
import { abortError } from "./registry/transport.ts";
import type { ResolvedImage } from "./types.ts";
import { imageConfigOf } from "./wasm-artifact.ts";

export type { LayerProgress } from "./pull-blob.ts";

export type PullProgress =
  | {
      type: "resolved";
      reference: string;
      manifestDigest: string;
      platform: string;
      layers: { digest: string; size: number }[];
    }
  | LayerProgress
  | { type: "stored"; reference: string; manifestDigest: string };

export interface PullOptions {
  store: ImageStore;
  /** `linux/arm64/v8` or a PlatformSpec; default: this host. */
  platform?: string | PlatformSpec;
  /**
   * How an index's wasm entries (`wasip1/wasm`...) are considered (see WasmPlatformRule): default "exact" when
   * `platform` is given, else "fallback" (this host's platform, else a wasm entry).
   */
  wasmPlatform?: WasmPlatformRule;
  credentials?: RegistryCredentials;
  /** Docker config file for credentials (default `~/.docker/config.json`); `false` for none. */
  dockerConfig?: string | false;
  /** Registry domains reached over plain HTTP (loopback registries always are). */
  insecureRegistries?: readonly string[];
  /** Limit overrides (MAX_MANIFEST_SIZE, MAX_CONFIG_SIZE, MAX_LAYER_SIZE, MAX_LAYERS, MAX_INFLIGHT_BLOBS...). */
  limits?: Partial<Record<keyof Limits, number>>;
  /** Overall timeout; default IMAGE_PULL_TIMEOUT_MS. */
  timeoutMs?: number;
  signal?: AbortSignal;
  onProgress?: (event: PullProgress) => void;
  retries?: number;
  retryBaseMs?: number;
}

export interface PullResult {
  image: ResolvedImage;
  record: ImageRecord;
  /** Layer blobs fetched by this pull (others were already stored). */
  downloaded: string[];
}

/**
 * Pulls an image into the store: resolves the reference (selecting a platform from an index), verifies every
 * digest, streams missing blobs into the BlobStore with bounded concurrency and retries, then records the
 * reference. Nothing is recorded unless every blob is stored; the BlobStore never exposes a partial blob.
 */
export async function pullImage(reference: string, options: PullOptions): Promise<PullResult> {
  const limits = resolveLimits(options.limits ?? {});
  const ref = parseReference(reference, limits);
  const canonical = formatReference(ref);
  const timeoutMs = options.timeoutMs ?? limits.IMAGE_PULL_TIMEOUT_MS;
  const controller = new AbortController();
  const timer = setTimeout(
    () =>
      controller.abort(
        new MagikError("Timeout", `pulling ${canonical} took longer than ${timeoutMs} ms`, {
          details: { reference: canonical, timeoutMs, limit: "IMAGE_PULL_TIMEOUT_MS" },
          hint: "Raise the pull timeout (--timeout) for slow registries or large images.",
        }),
      ),
    timeoutMs,
  );
  const onCallerAbort = () =>
    controller.abort(
      new MagikError("Cancelled", `pull of ${canonical} was cancelled`, {
        details: { reference: canonical },
      }),
    );
  if (options.signal?.aborted) onCallerAbort();
  options.signal?.addEventListener("abort", onCallerAbort, { once: true });
  const signal = controller.signal;
  try {
    return await pullInner(ref, canonical, limits, signal, options);
  } catch (err) {
    if (signal.aborted) throw abortError(signal);
    throw err;
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", onCallerAbort);
  }
}

async function pullInner(
  ref: ReturnType<typeof parseReference>,
  canonical: string,
  limits: Limits,
  signal: AbortSignal,
  options: PullOptions,
): Promise<PullResult> {
  const { store } = options;
  const client = new RegistryClient({
    domain: ref.domain,
    insecure: options.insecureRegistries?.includes(ref.domain) ?? false,
    signal,
    ...(options.credentials ? { credentials: options.credentials } : {}),
    ...(options.dockerConfig !== undefined ? { dockerConfig: options.dockerConfig } : {}),
    ...(options.retries !== undefined ? { retries: options.retries } : {}),
    ...(options.retryBaseMs !== undefined ? { retryBaseMs: options.retryBaseMs } : {}),
  });
  const platform =
    typeof options.platform === "string"
      ? parsePlatform(options.platform)
      : (options.platform ?? hostPlatform());
  const top = await client.getManifest(ref.path, manifestSelector(ref), limits.MAX_MANIFEST_SIZE);

  let manifestFetched = top;
  let indexDigest: string | undefined;
  if (isIndexMediaType(top.mediaType)) {
    const index = parseJsonWith(
      ImageIndex,
      new TextDecoder().decode(top.bytes),
      "image index",
      "ManifestParseFailed",
    );
    const chosen = selectPlatform(
      index.manifests,
      platform,
      options.wasmPlatform ?? (options.platform === undefined ? "fallback" : "exact"),
    );
    manifestFetched = await client.getManifest(ref.path, chosen.digest, limits.MAX_MANIFEST_SIZE);
    if (manifestFetched.bytes.length !== chosen.size) {
      throw new MagikError(
        "DigestMismatch",
        `manifest ${chosen.digest} has ${manifestFetched.bytes.length} bytes, the index says ${chosen.size}`,
        {
          details: {
            digest: chosen.digest,
            expectedSize: chosen.size,
            actualSize: manifestFetched.bytes.length,
          },
        },
      );
    }
    indexDigest = top.digest;
  }
  if (!isManifestMediaType(manifestFetched.mediaType)) {
    throw new MagikError(
      "ManifestParseFailed",
      `unsupported manifest type ${JSON.stringify(manifestFetched.mediaType)}`,
      {
        details: { reference: canonical, mediaType: manifestFetched.mediaType },
        hint: "Only OCI image manifests/indexes and Docker schema2 manifests/lists are supported (not schema1).",
      },
    );
  }
  const manifest = parseJsonWith(
    ImageManifest,
    new TextDecoder().decode(manifestFetched.bytes),
    "image manifest",
    "ManifestParseFailed",
  );
  checkLayers(manifest.layers, limits, canonical);

  if (manifest.config.size > limits.MAX_CONFIG_SIZE) {
    throw new MagikError(
      "ImageTooLarge",
      `the config declares ${manifest.config.size} bytes, more than MAX_CONFIG_SIZE`,
      {
        details: {
          reference: canonical,
          limit: "MAX_CONFIG_SIZE",
          max: limits.MAX_CONFIG_SIZE,
          value: manifest.config.size,
        },
      },
    );
  }
  const configBytes = await client.getBlob(
    ref.path,
    manifest.config.digest,
    limits.MAX_CONFIG_SIZE,
    "MAX_CONFIG_SIZE",
  );
  // A wasm artifact's config is not an image config: an ImageConfig is synthesized from it (wasm-artifact.ts).
  const config = imageConfigOf(manifest, configBytes, canonical);
  const tarLayers = manifest.layers.filter((l) => layerCompression(l.mediaType) !== undefined);
  if (tarLayers.length !== config.rootfs.diff_ids.length) {
    throw new MagikError(
      "ManifestParseFailed",
      `the manifest has ${tarLayers.length} layers but the config lists ${config.rootfs.diff_ids.length} diff_ids`,
      {
        details: { reference: canonical, layers: tarLayers.length, diffIds: config.rootfs.diff_ids.length },
      },
    );
  }
  options.onProgress?.({
    type: "resolved",
    reference: canonical,
    manifestDigest: manifestFetched.digest,
    platform: formatPlatform({
      os: config.os,
      architecture: config.architecture,
      ...(config.variant ? { variant: config.variant } : {}),
    }),
    layers: manifest.layers.map((l) => ({ digest: l.digest, size: l.size })),
  });

  const downloaded: string[] = [];
  await forEachLimited(uniqueByDigest(manifest.layers), limits.MAX_INFLIGHT_BLOBS, async (layer) => {
    const fetched = await downloadBlob(client, store.blobs, ref.path, layer, {
      maxSize: limits.MAX_LAYER_SIZE,
      signal,
      retries: options.retries ?? 3,
      retryBaseMs: options.retryBaseMs ?? 200,
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    });
    if (fetched) downloaded.push(layer.digest);
  });
  await store.blobs.put(configBytes, { digest: manifest.config.digest, signal });
  await store.blobs.put(manifestFetched.bytes, { digest: manifestFetched.digest, signal });
  if (indexDigest) await store.blobs.put(top.bytes, { digest: indexDigest, signal });

  const size =
    manifestFetched.bytes.length + configBytes.length + manifest.layers.reduce((n, l) => n + l.size, 0);
  const record: ImageRecord = {
    reference: canonical,
    manifestDigest: manifestFetched.digest,
    configDigest: manifest.config.digest,
    mediaType: manifestFetched.mediaType,
    size,
    platform: formatPlatform({
      os: config.os,
      architecture: config.architecture,
      ...(config.variant ? { variant: config.variant } : {}),
    }),
    created: new Date().toISOString(),
    ...(indexDigest ? { indexDigest } : {}),
  };
  await store.record([record]);
  options.onProgress?.({ type: "stored", reference: canonical, manifestDigest: record.manifestDigest });
  return {
    image: {
      reference: canonical,
      manifestDigest: record.manifestDigest,
      manifest,
      configDigest: record.configDigest,
      config,
    },
    record,
    downloaded,
  };
}

function checkLayers(layers: readonly Descriptor[], limits: Limits, reference: string): void {
  if (layers.length > limits.MAX_LAYERS) {
    throw new MagikError(
      "ImageTooLarge",
      `the image has ${layers.length} layers, more than MAX_LAYERS (${limits.MAX_LAYERS})`,
      {
        details: { reference, limit: "MAX_LAYERS", max: limits.MAX_LAYERS, value: layers.length },
      },
    );
  }
  for (const layer of layers) {
    if (layer.size > limits.MAX_LAYER_SIZE) {
      throw new MagikError(
        "ImageTooLarge",
        `layer ${layer.digest} declares ${layer.size} bytes, more than MAX_LAYER_SIZE`,
        {
          details: {
            reference,
            digest: layer.digest,
            limit: "MAX_LAYER_SIZE",
            max: limits.MAX_LAYER_SIZE,
            value: layer.size,
          },
        },
      );
    }
    if (layer.mediaType === MediaTypes.dockerForeignLayerTarGzip || (layer.urls?.length ?? 0) > 0) {
      throw new MagikError(
        "NotSupported",
        `layer ${layer.digest} is a foreign layer (served from external URLs)`,
        {
          details: { reference, digest: layer.digest, mediaType: layer.mediaType },
        },
      );
    }
  }
}

function uniqueByDigest(layers: readonly Descriptor[]): Descriptor[] {
  const seen = new Map<string, Descriptor>();
  for (const l of layers) if (!seen.has(l.digest)) seen.set(l.digest, l);
  return [...seen.values()];
}

/** Runs `work` over items with at most `limit` in flight; the first failure stops new work and is thrown. */
export async function forEachLimited<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (failure === undefined && next < items.length) {
      const item = items[next++]!;
      try {
        await work(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failure) throw failure.error;
}
