import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import {
  type Descriptor,
  enforceLimit,
  type Limits,
  MagikError,
  MediaTypes,
  parseDigest,
  resolveLimits,
  sha256Digest,
  toMagikError,
} from "@magikrun/spec";
import { LAYOUT, type ResolvedImage } from "./types.ts";
import { extractTar } from "./unpack/extract.ts";
import { measuredLayerStream, type SizeLimit } from "./unpack/layer-stream.ts";
import type { LayerView } from "./unpack/union-view.ts";

/**
 * Unpacked layers, each unpacked once. A layer is stored under its *chain id* (the diff_id for a base layer;
 * `sha256(parent chain id + " " + diff_id)` above it), not its bare diff_id: entries are resolved against the layers
 * below (a write through a lower symlink lands where the symlink points), so the same diff over other lowers can
 * give other files. Layout: `layers/sha256/<chain hex>/{diff/,layer.json}`.
 *
 * A layer is unpacked into `layers/tmp/<random>/` and renamed into place only once every entry is written and the
 * decompressed stream matched its diff_id; any failure removes the temp dir, so a layer is there whole or not at all.
 */

/** What the cache needs from the blob store (`@magikrun/storage`'s BlobStore has it). */
export interface LayerBlobSource {
  open(digest: string): Promise<ReadableStream<Uint8Array>>;
}

export interface LayerMeta {
  version: 1;
  chainId: string;
  diffId: string;
  /** Compressed blob digest and media type it was unpacked from. */
  digest: string;
  mediaType: string;
  /** Uncompressed tar size. */
  size: number;
  entries: number;
  warnings: string[];
  whiteouts: string[];
  opaques: string[];
  overlayReady: boolean;
}

export interface UnpackedLayer {
  /** The directory holding the layer's files (an overlay lowerdir when `meta.overlayReady`). */
  dir: string;
  meta: LayerMeta;
}

export interface LayerCacheOptions {
  limits?: Partial<Limits>;
  /** Defaults to running as root. */
  privileged?: boolean;
}

const DIFF = "diff";
const META = "layer.json";

export function chainIds(diffIds: readonly string[]): string[] {
  const out: string[] = [];
  for (const diffId of diffIds) {
    const parent = out[out.length - 1];
    out.push(parent === undefined ? diffId : sha256Digest(`${parent} ${diffId}`));
  }
  return out;
}

function isFilesystemLayer(descriptor: Descriptor): boolean {
  return descriptor.mediaType !== MediaTypes.wasmLayer && descriptor.mediaType !== MediaTypes.ociEmpty;
}

export class LayerCache {
  readonly root: string;
  readonly limits: Limits;
  readonly privileged: boolean;
  readonly #blobs: LayerBlobSource;
  readonly #inflight = new Map<string, Promise<UnpackedLayer>>();

  constructor(root: string, blobs: LayerBlobSource, options: LayerCacheOptions = {}) {
    this.root = path.resolve(root);
    this.#blobs = blobs;
    this.limits = resolveLimits(options.limits as Record<string, number> | undefined);
    this.privileged = options.privileged ?? process.getuid?.() === 0;
  }

  layerPath(chainId: string): string {
    return path.join(this.root, LAYOUT.layers, "sha256", parseDigest(chainId).hex);
  }

  /** The cached layer, or undefined when it is not (completely) unpacked. */
  get(chainId: string): UnpackedLayer | undefined {
    const dir = this.layerPath(chainId);
    try {
      const meta = JSON.parse(fs.readFileSync(path.join(dir, META), "utf8")) as LayerMeta;
      return { dir: path.join(dir, DIFF), meta };
    } catch {
      return undefined;
    }
  }

  /**
   * Every filesystem layer of the image, bottom to top, unpacking those not cached yet. Enforces MAX_LAYERS and
   * MAX_ROOTFS_SIZE (the sum of the uncompressed layers, counted while decompressing).
   */
  async unpackImage(image: ResolvedImage): Promise<UnpackedLayer[]> {
    const layers = image.manifest.layers.filter(isFilesystemLayer);
    const diffIds = image.config.rootfs.diff_ids;
    enforceLimit("MAX_LAYERS", layers.length, this.limits, "ImageTooLarge");
    if (layers.length !== diffIds.length) {
      throw new MagikError(
        "ManifestParseFailed",
        "the manifest's layers do not match the config's diff_ids",
        {
          details: { layers: layers.length, diffIds: diffIds.length, manifest: image.manifestDigest },
        },
      );
    }
    const chain = chainIds(diffIds);
    const out: UnpackedLayer[] = [];
    let total = 0;
    for (const [i, descriptor] of layers.entries()) {
      const chainId = chain[i]!;
      let layer = this.get(chainId);
      if (!layer) {
        let pending = this.#inflight.get(chainId);
        if (!pending) {
          pending = this.#unpack(descriptor, diffIds[i]!, chainId, out, total).finally(() =>
            this.#inflight.delete(chainId),
          );
          this.#inflight.set(chainId, pending);
        }
        layer = await pending;
      }
      total += layer.meta.size;
      enforceLimit("MAX_ROOTFS_SIZE", total, this.limits, "ImageTooLarge");
      out.push(layer);
    }
    return out;
  }

  async #unpack(
    descriptor: Descriptor,
    diffId: string,
    chainId: string,
    lowers: UnpackedLayer[],
    rootfsSoFar: number,
  ): Promise<UnpackedLayer> {
    const tmpRoot = path.join(this.root, LAYOUT.layers, "tmp");
    fs.mkdirSync(tmpRoot, { recursive: true, mode: 0o700 });
    const tmp = path.join(
      tmpRoot,
      `${parseDigest(chainId).hex.slice(0, 12)}-${randomBytes(6).toString("hex")}`,
    );
    fs.mkdirSync(path.join(tmp, DIFF), { recursive: true, mode: 0o755 });
    try {
      const limits: SizeLimit[] = [
        { name: "MAX_LAYER_SIZE", max: this.limits.MAX_LAYER_SIZE },
        { name: "MAX_ROOTFS_SIZE", max: this.limits.MAX_ROOTFS_SIZE, already: rootfsSoFar },
      ];
      const blob = await this.#blobs.open(descriptor.digest);
      const stream = measuredLayerStream(blob, limits);
      const lowerViews: LayerView[] = lowers
        .map((layer) => ({
          dir: layer.dir,
          whiteouts: new Set(layer.meta.whiteouts),
          opaques: new Set(layer.meta.opaques),
        }))
        .reverse();
      const result = await extractTar(stream.chunks, {
        dir: path.join(tmp, DIFF),
        lowers: lowerViews,
        limits: this.limits,
        privileged: this.privileged,
      });
      const actual = stream.digest();
      if (actual !== diffId) {
        throw new MagikError("DigestMismatch", `layer ${descriptor.digest} does not match its diff_id`, {
          details: { digest: descriptor.digest, expected: diffId, actual },
        });
      }
      const meta: LayerMeta = {
        version: 1,
        chainId,
        diffId,
        digest: descriptor.digest,
        mediaType: descriptor.mediaType,
        size: stream.bytes(),
        entries: result.entries,
        warnings: result.warnings,
        whiteouts: result.whiteouts,
        opaques: result.opaques,
        overlayReady: result.overlayReady,
      };
      fs.writeFileSync(path.join(tmp, META), JSON.stringify(meta));
      const final = this.layerPath(chainId);
      fs.mkdirSync(path.dirname(final), { recursive: true, mode: 0o700 });
      try {
        fs.renameSync(tmp, final);
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (code !== "ENOTEMPTY" && code !== "EEXIST") throw err;
        fs.rmSync(tmp, { recursive: true, force: true }); // another process finished it first
      }
      return { dir: path.join(final, DIFF), meta };
    } catch (err) {
      fs.rmSync(tmp, { recursive: true, force: true });
      throw toMagikError(err, "LayerExtractionFailed", `cannot unpack layer ${descriptor.digest}`);
    }
  }

  /** Removes a cached layer (callers make sure no rootfs uses it). */
  remove(chainId: string): void {
    fs.rmSync(this.layerPath(chainId), { recursive: true, force: true });
  }

  /**
   * Removes cached layers no image references (by chain id, from each image's diff_ids) and no assembled rootfs
   * uses, and temp dirs left by unpacks that died. Plugs into `ImageStore.prune` as its LayerPruner.
   */
  async prune(referenced: { images: readonly (readonly string[])[] }): Promise<{ removed: string[] }> {
    const keep = new Set(referenced.images.flatMap((diffIds) => chainIds(diffIds)));
    for (const chainId of this.#layersInUse()) keep.add(chainId);
    const removed: string[] = [];
    const layersDir = path.join(this.root, LAYOUT.layers, "sha256");
    for (const hex of fs.existsSync(layersDir) ? fs.readdirSync(layersDir) : []) {
      const chainId = `sha256:${hex}`;
      if (keep.has(chainId) || this.#inflight.has(chainId)) continue;
      this.remove(chainId);
      removed.push(chainId);
    }
    this.removeStaleTemp();
    return { removed };
  }

  #layersInUse(): string[] {
    const rootfsDir = path.join(this.root, LAYOUT.rootfs);
    if (!fs.existsSync(rootfsDir)) return [];
    return fs.readdirSync(rootfsDir).flatMap((id) => {
      try {
        const info = JSON.parse(fs.readFileSync(path.join(rootfsDir, id, "rootfs.json"), "utf8"));
        return Array.isArray(info.layers) ? (info.layers as string[]) : [];
      } catch {
        return [];
      }
    });
  }

  /** Removes unpack temp dirs older than `olderThanMs` (never this process's own unpacks in flight). */
  removeStaleTemp(olderThanMs = 60 * 60 * 1000): string[] {
    const tmpRoot = path.join(this.root, LAYOUT.layers, "tmp");
    if (!fs.existsSync(tmpRoot) || this.#inflight.size > 0) return [];
    const removed: string[] = [];
    for (const name of fs.readdirSync(tmpRoot)) {
      const dir = path.join(tmpRoot, name);
      const stat = fs.lstatSync(dir, { throwIfNoEntry: false });
      if (stat && Date.now() - stat.mtimeMs >= olderThanMs) {
        fs.rmSync(dir, { recursive: true, force: true });
        removed.push(dir);
      }
    }
    return removed;
  }
}
