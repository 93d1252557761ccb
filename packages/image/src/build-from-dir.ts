import { lstat, readdir, readlink } from "node:fs/promises";
import { join } from "node:path";
import {
  ImageConfig,
  ImageManifest,
  type ImageRuntimeConfig,
  type Limits,
  MagikError,
  MediaTypes,
  parseWith,
  resolveLimits,
  sha256Digest,
} from "@magikrun/spec";
import type { ImageRecord, ImageStore } from "./image-store.ts";
import { hostPlatform, type PlatformSpec, parsePlatform } from "./platform.ts";
import { formatReference, parseReference } from "./reference.ts";
import { compressStream, type TarEntry, tarStream } from "./tar-writer.ts";
import type { ResolvedImage } from "./types.ts";

export interface BuildFromDirOptions {
  store: ImageStore;
  /** Reference to record the image under, e.g. `magikrun/busybox:latest`. */
  reference: string;
  /** Runtime config of the image (Entrypoint, Cmd, Env, WorkingDir, User, ExposedPorts, Labels...). */
  config?: Partial<ImageRuntimeConfig>;
  platform?: string | PlatformSpec;
  compression?: "gzip" | "zstd" | "none";
  /** Keep the files' uid/gid; by default everything belongs to root, as a rootfs built by a user should. */
  preserveOwnership?: boolean;
  /** `created` of the config; default the epoch, so the same directory always gives the same digests. */
  created?: string;
  limits?: Partial<Record<keyof Limits, number>>;
  signal?: AbortSignal;
}

export interface BuildResult {
  image: ResolvedImage;
  record: ImageRecord;
  diffId: string;
  layerDigest: string;
}

interface WalkState {
  root: string;
  limits: Limits;
  files: number;
  bytes: number;
  inodes: Map<string, string>;
  preserveOwnership: boolean;
}

/**
 * Walks `dir` in sorted order (so the tar is reproducible), turning each entry into a tar entry. Hardlinks are
 * found by inode; sockets are skipped (they cannot live in a layer). Limits are checked as the walk goes.
 */
async function* walk(state: WalkState, rel: string): AsyncGenerator<TarEntry> {
  const names = (await readdir(join(state.root, rel))).sort();
  for (const name of names) {
    const path = rel ? `${rel}/${name}` : name;
    const abs = join(state.root, path);
    const st = await lstat(abs);
    if (++state.files > state.limits.MAX_FILES_PER_LAYER) {
      throw new MagikError("ImageTooLarge", `the directory has more than MAX_FILES_PER_LAYER entries`, {
        details: { limit: "MAX_FILES_PER_LAYER", max: state.limits.MAX_FILES_PER_LAYER, path: abs },
      });
    }
    const common = {
      mode: st.mode & 0o7777,
      uid: state.preserveOwnership ? st.uid : 0,
      gid: state.preserveOwnership ? st.gid : 0,
    };
    if (st.isDirectory()) {
      yield { ...common, type: "dir", path: `${path}/` };
      yield* walk(state, path);
    } else if (st.isSymbolicLink()) {
      yield { ...common, type: "symlink", path, target: await readlink(abs) };
    } else if (st.isFile()) {
      const inode = `${st.dev}:${st.ino}`;
      const first = st.nlink > 1 ? state.inodes.get(inode) : undefined;
      if (first !== undefined) {
        yield { ...common, type: "hardlink", path, target: first };
        continue;
      }
      if (st.nlink > 1) state.inodes.set(inode, path);
      state.bytes += st.size;
      if (state.bytes > state.limits.MAX_ROOTFS_SIZE) {
        throw new MagikError("ImageTooLarge", `the directory holds more than MAX_ROOTFS_SIZE bytes`, {
          details: { limit: "MAX_ROOTFS_SIZE", max: state.limits.MAX_ROOTFS_SIZE, path: abs },
        });
      }
      const file = Bun.file(abs);
      yield { ...common, type: "file", path, data: { size: st.size, chunks: file.stream() } };
    } else if (st.isCharacterDevice() || st.isBlockDevice()) {
      const major = Number((BigInt(st.rdev) >> 8n) & 0xfffn);
      const minor = Number((BigInt(st.rdev) & 0xffn) | ((BigInt(st.rdev) >> 12n) & 0xfff00n));
      yield { ...common, type: st.isCharacterDevice() ? "char" : "block", path, major, minor };
    } else if (st.isFIFO()) {
      yield { ...common, type: "fifo", path };
    }
  }
}

/** Hashes what passes through: the diff_id is the digest of the uncompressed tar. */
function hashingTap(): { stream: TransformStream<Uint8Array, Uint8Array>; digest: () => string } {
  const hasher = new Bun.CryptoHasher("sha256");
  return {
    stream: new TransformStream({
      transform(chunk, controller) {
        hasher.update(chunk);
        controller.enqueue(chunk);
      },
    }),
    digest: () => `sha256:${hasher.digest("hex")}`,
  };
}

/**
 * Makes a one-layer image from a directory holding a root filesystem, e.g. a busybox rootfs, so images can be had
 * without a registry. The tar is deterministic (sorted, mtime 0, root-owned), so the same directory and config
 * give the same digests. The layer is streamed into the blob store; nothing is recorded if any step fails.
 */
export async function buildFromDir(dir: string, options: BuildFromDirOptions): Promise<BuildResult> {
  const limits = resolveLimits(options.limits ?? {});
  const ref = parseReference(options.reference, limits);
  const platform =
    typeof options.platform === "string"
      ? parsePlatform(options.platform)
      : (options.platform ?? hostPlatform());
  const top = await lstat(dir).catch(() => undefined);
  if (!top?.isDirectory()) {
    throw new MagikError("InvalidInput", `${dir} is not a directory`, {
      details: { path: dir },
      hint: "Give the directory that holds the image's root filesystem.",
    });
  }
  const compression = options.compression ?? "gzip";
  const state: WalkState = {
    root: dir,
    limits,
    files: 0,
    bytes: 0,
    inodes: new Map(),
    preserveOwnership: options.preserveOwnership ?? false,
  };
  const tap = hashingTap();
  const tar = tarStream(walk(state, "")).pipeThrough(tap.stream);
  const layerStream = compression === "none" ? tar : compressStream(tar, compression);
  const layer = await options.store.blobs.put(layerStream, {
    maxSize: limits.MAX_LAYER_SIZE,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const diffId = tap.digest();
  const layerMediaType = {
    none: MediaTypes.ociLayerTar,
    gzip: MediaTypes.ociLayerTarGzip,
    zstd: MediaTypes.ociLayerTarZstd,
  }[compression];

  const created = options.created ?? "1970-01-01T00:00:00Z";
  const configDoc = {
    created,
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    config: options.config ?? {},
    rootfs: { type: "layers" as const, diff_ids: [diffId] },
    history: [{ created, created_by: `magikrun image build-from-dir` }],
  };
  const configBytes = new TextEncoder().encode(JSON.stringify(configDoc));
  const configDigest = sha256Digest(configBytes);
  const manifestDoc = {
    schemaVersion: 2 as const,
    mediaType: MediaTypes.ociManifest,
    config: { mediaType: MediaTypes.ociConfig, digest: configDigest, size: configBytes.length },
    layers: [{ mediaType: layerMediaType, digest: layer.digest, size: layer.size }],
  };
  const manifestBytes = new TextEncoder().encode(JSON.stringify(manifestDoc));
  const manifestDigest = sha256Digest(manifestBytes);
  await options.store.blobs.put(configBytes, { digest: configDigest });
  await options.store.blobs.put(manifestBytes, { digest: manifestDigest });

  const canonical = formatReference(ref.digest ? { ...ref, digest: manifestDigest } : ref);
  if (ref.digest !== undefined && ref.digest !== manifestDigest) {
    throw new MagikError(
      "InvalidImageReference",
      `the built image has digest ${manifestDigest}, not ${ref.digest}`,
      {
        details: { reference: options.reference, part: "digest", value: ref.digest, actual: manifestDigest },
      },
    );
  }
  const record: ImageRecord = {
    reference: canonical,
    manifestDigest,
    configDigest,
    mediaType: MediaTypes.ociManifest,
    size: manifestBytes.length + configBytes.length + layer.size,
    platform: `${platform.os}/${platform.architecture}${platform.variant ? `/${platform.variant}` : ""}`,
    created: new Date().toISOString(),
  };
  await options.store.record([record]);
  return {
    image: {
      reference: canonical,
      manifestDigest,
      manifest: parseWith(ImageManifest, manifestDoc, "image manifest", "Internal"),
      configDigest,
      config: parseWith(ImageConfig, configDoc, "image config", "Internal"),
    },
    record,
    diffId,
    layerDigest: layer.digest,
  };
}
