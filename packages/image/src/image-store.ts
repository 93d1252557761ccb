import { type ImageConfig, ImageManifest, MagikError, parseJsonWith } from "@magikrun/spec";
import { BlobStore, defaultRoot } from "@magikrun/storage";
import { ImageIndexFile, type ImageRecord } from "./image-store-index.ts";
import { familiarReference, normalizeReference, parseReference, repositoryName } from "./reference.ts";
import type { ResolvedImage } from "./types.ts";
import { imageConfigOf } from "./wasm-artifact.ts";

export type { ImageRecord } from "./image-store-index.ts";

/**
 * Removes unpacked layers (keyed by diff_id) that no image references; owned by the layer cache, plugged in here
 * so `prune` can clean both blobs and layers.
 */
export type LayerPruner = (referenced: ReferencedLayers) => Promise<{ removed: string[] }>;

export interface ReferencedLayers {
  diffIds: ReadonlySet<string>;
  /** Each image's diff_ids in order, for caches keyed by chain id. */
  images: readonly (readonly string[])[];
}

export interface PruneResult {
  blobsRemoved: string[];
  bytesFreed: number;
  layersRemoved: string[];
}

const ID_PATTERN = /^(?:sha256:)?([0-9a-f]{12,64})$/;

/**
 * The local images: references → manifest digests in `<root>/images/index.json`, content in the BlobStore.
 * Lookups accept canonical or familiar references (`busybox`), `name@sha256:…`, and image ids (a prefix of at
 * least 12 hex digits of the manifest or config digest).
 */
export class ImageStore {
  readonly root: string;
  readonly blobs: BlobStore;
  readonly index: ImageIndexFile;

  constructor(blobs: BlobStore) {
    this.blobs = blobs;
    this.root = blobs.root;
    this.index = new ImageIndexFile(blobs.root);
  }

  static async open(root: string = defaultRoot()): Promise<ImageStore> {
    return new ImageStore(await BlobStore.open(root));
  }

  list(): ImageRecord[] {
    return Object.values(this.index.read().images).sort((a, b) => a.reference.localeCompare(b.reference));
  }

  /** Adds or replaces references. */
  async record(records: ImageRecord[]): Promise<void> {
    await this.index.update((index) => {
      for (const r of records) index.images[r.reference] = r;
    });
  }

  /** The records `query` names; ImageNotFound when none. */
  find(query: string): ImageRecord[] {
    const records = this.list();
    const id = ID_PATTERN.exec(query)?.[1];
    if (id !== undefined) {
      const byId = records.filter(
        (r) => r.manifestDigest.slice(7).startsWith(id) || r.configDigest.slice(7).startsWith(id),
      );
      const distinct = new Set(byId.map((r) => r.manifestDigest));
      if (distinct.size > 1) {
        throw new MagikError("InvalidInput", `image id ${query} is ambiguous`, {
          details: { id: query, matches: [...distinct] },
          hint: "Give more digits of the id.",
        });
      }
      if (byId.length > 0) return byId;
    }
    let ref: ReturnType<typeof parseReference>;
    try {
      ref = parseReference(query);
    } catch (err) {
      if (id !== undefined) throw notFound(query);
      throw err;
    }
    const exact = this.index.read().images[normalizeReference(query)];
    if (exact) return [exact];
    if (ref.digest !== undefined) {
      const repo = repositoryName(ref);
      const byDigest = records.filter(
        (r) =>
          repositoryName(parseReference(r.reference)) === repo &&
          (r.manifestDigest === ref.digest || r.indexDigest === ref.digest),
      );
      if (byDigest.length > 0) return byDigest;
    }
    throw notFound(query);
  }

  /** The image `query` names, with manifest and config read back from the blob store and validated. */
  async resolve(query: string): Promise<ResolvedImage> {
    const record = this.find(query)[0]!;
    return this.load(record);
  }

  async load(record: ImageRecord): Promise<ResolvedImage> {
    const bytes = async (digest: string) => {
      if (!(await this.blobs.has(digest))) {
        throw new MagikError(
          "BlobNotFound",
          `blob ${digest} of ${record.reference} is missing from the store`,
          {
            details: { reference: record.reference, digest },
            hint: "Pull or import the image again.",
          },
        );
      }
      return this.blobs.read(digest);
    };
    const manifest = parseJsonWith(
      ImageManifest,
      new TextDecoder().decode(await bytes(record.manifestDigest)),
      "image manifest",
      "ManifestParseFailed",
    );
    const config: ImageConfig = imageConfigOf(manifest, await bytes(record.configDigest), record.reference);
    return {
      reference: record.reference,
      manifestDigest: record.manifestDigest,
      manifest,
      configDigest: record.configDigest,
      config,
    };
  }

  /** Adds `target` as another reference to the image `source` names. */
  async tag(source: string, target: string): Promise<ImageRecord> {
    const from = this.find(source)[0]!;
    const ref = parseReference(target);
    if (ref.digest !== undefined && ref.digest !== from.manifestDigest && ref.digest !== from.indexDigest) {
      throw new MagikError("InvalidImageReference", `${target} pins a digest the image does not have`, {
        details: {
          reference: target,
          part: "digest",
          value: ref.digest,
          manifestDigest: from.manifestDigest,
        },
      });
    }
    const record: ImageRecord = {
      ...from,
      reference: normalizeReference(target),
      created: new Date().toISOString(),
    };
    await this.record([record]);
    return record;
  }

  /** Removes the references `query` names (all of an image's references when given its id). Blobs stay until prune. */
  async remove(query: string): Promise<ImageRecord[]> {
    const records = this.find(query);
    await this.index.update((index) => {
      for (const r of records) delete index.images[r.reference];
    });
    return records;
  }

  /** Every blob digest and diff_id some image references. */
  async referenced(): Promise<{ blobs: Set<string>; diffIds: Set<string>; images: string[][] }> {
    const blobs = new Set<string>();
    const diffIds = new Set<string>();
    const images: string[][] = [];
    for (const record of this.list()) {
      blobs.add(record.manifestDigest);
      blobs.add(record.configDigest);
      if (record.indexDigest) blobs.add(record.indexDigest);
      try {
        const image = await this.load(record);
        for (const layer of image.manifest.layers) blobs.add(layer.digest);
        for (const diffId of image.config.rootfs.diff_ids) diffIds.add(diffId);
        images.push(image.config.rootfs.diff_ids);
      } catch (err) {
        // A broken image keeps what it still has; it is not a reason to delete other images' data.
        if (!(err instanceof MagikError)) throw err;
      }
    }
    return { blobs, diffIds, images };
  }

  /** Deletes blobs (and, through `layers`, unpacked layers) that no reference needs any more. */
  async prune(layers?: LayerPruner): Promise<PruneResult> {
    const { blobs, diffIds, images } = await this.referenced();
    const gc = await this.blobs.gc(blobs);
    const layersRemoved = layers ? (await layers({ diffIds, images })).removed : [];
    return { blobsRemoved: gc.removed, bytesFreed: gc.bytesFreed, layersRemoved };
  }
}

function notFound(query: string): MagikError {
  return new MagikError("ImageNotFound", `no local image ${JSON.stringify(query)}`, {
    details: { reference: query },
  });
}

/** `busybox:latest` style name for display. */
export function displayName(record: ImageRecord): string {
  return familiarReference(parseReference(record.reference));
}
