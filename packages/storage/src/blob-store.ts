import { mkdir, readFile, stat, unlink } from "node:fs/promises";
import { join, resolve } from "node:path";
import { DEFAULT_LIMITS, MagikError, parseDigest } from "@magikrun/spec";
import { BLOBS_DIR, type BlobLocation, locateBlob, TMP_DIR } from "./layout.ts";
import { type BlobInfo, listBlobs } from "./list.ts";
import { openBlobStream } from "./read-stream.ts";
import { defaultRoot } from "./root.ts";
import { type BlobSource, chunkReader, discardSource, isBlobSource } from "./source.ts";
import { removeStaleTempFiles, tempFileName } from "./temp-files.ts";
import {
  bytesToTempFile,
  cancelled,
  checkDigest,
  commitBlob,
  sizeMismatch,
  streamToTempFile,
  tooLarge,
  type WriteRules,
} from "./write-blob.ts";

export type { BlobInfo } from "./list.ts";

export interface BlobStoreOptions {
  /** Largest blob `put` accepts unless a put says otherwise. Default DEFAULT_LIMITS.MAX_LAYER_SIZE. */
  maxBlobSize?: number;
  /** Temp files untouched this long are removed on open even if their writer's pid is alive. Default 24 h. */
  staleTempAfterMs?: number;
}

export interface PutOptions {
  /** Digest the content must have. When the blob is already stored, the source is not read at all. */
  digest?: string;
  /** Exact size the content must have. */
  size?: number;
  /** Overrides the store's maxBlobSize for this put. */
  maxSize?: number;
  signal?: AbortSignal;
  /** Called after each chunk is written, with the bytes written so far. */
  onProgress?: (bytesWritten: number) => void;
}

export interface PutResult {
  digest: string;
  size: number;
  /** True when the blob was already stored and nothing was written. */
  existed: boolean;
}

export interface BlobStat extends BlobInfo {
  path: string;
  mtimeMs: number;
}

export interface GcResult {
  removed: string[];
  bytesFreed: number;
  tempFilesRemoved: number;
}

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * Content-addressed blob store. Every blob on disk was verified against its digest before it became visible, and
 * nothing is ever visible half-written: content goes to a temp file on the same filesystem, is fsynced, and is
 * committed with one atomic directory operation.
 */
export class BlobStore {
  readonly root: string;
  readonly maxBlobSize: number;
  readonly #tmpDir: string;
  readonly #staleTempAfterMs: number;
  /** Puts in progress by expected digest: a second put of the same blob waits instead of writing it twice. */
  readonly #inflight = new Map<string, Promise<PutResult>>();

  private constructor(root: string, maxBlobSize: number, staleTempAfterMs: number) {
    this.root = root;
    this.maxBlobSize = maxBlobSize;
    this.#tmpDir = join(root, TMP_DIR);
    this.#staleTempAfterMs = staleTempAfterMs;
  }

  /** Creates the layout if needed and removes temp files left by writers that died mid-put. */
  static async open(root: string = defaultRoot(), options: BlobStoreOptions = {}): Promise<BlobStore> {
    const maxBlobSize = positiveInteger("maxBlobSize", options.maxBlobSize ?? DEFAULT_LIMITS.MAX_LAYER_SIZE);
    const staleAfter = positiveInteger("staleTempAfterMs", options.staleTempAfterMs ?? DAY_MS);
    if (typeof root !== "string" || root.length === 0 || root.includes("\0")) {
      throw new MagikError("InvalidInput", "the storage root must be a non-empty path", {
        details: { root },
      });
    }
    const store = new BlobStore(resolve(root), maxBlobSize, staleAfter);
    try {
      await mkdir(join(store.root, BLOBS_DIR, "sha256"), { recursive: true, mode: 0o755 });
      await mkdir(store.#tmpDir, { recursive: true, mode: 0o700 });
      await store.removeStaleTempFiles();
    } catch (err) {
      throw new MagikError("StorageWriteFailed", `cannot open the blob store at ${store.root}`, {
        cause: err,
        details: { root: store.root, errno: (err as { code?: unknown }).code },
      });
    }
    return store;
  }

  /** Absolute path a blob has (or would have). Validates the digest; does not check that the blob exists. */
  path(digest: string): string {
    return locateBlob(this.root, digest).path;
  }

  async has(digest: string): Promise<boolean> {
    const info = await stat(locateBlob(this.root, digest).path).catch(() => undefined);
    return info?.isFile() ?? false;
  }

  async stat(digest: string): Promise<BlobStat> {
    const location = locateBlob(this.root, digest);
    const info = await stat(location.path).catch((err) => notFoundOr(err, location));
    if (!info.isFile()) throw blobNotFound(location);
    return { digest: location.digest, size: info.size, path: location.path, mtimeMs: info.mtimeMs };
  }

  /** Streams a blob's content. Throws BlobNotFound now, not on first read, when it is missing. */
  async open(digest: string): Promise<ReadableStream<Uint8Array>> {
    const location = locateBlob(this.root, digest);
    return openBlobStream(location.path).catch((err) => notFoundOr(err, location));
  }

  async read(digest: string): Promise<Uint8Array> {
    const location = locateBlob(this.root, digest);
    return readFile(location.path).catch((err) => notFoundOr(err, location));
  }

  /** Re-hashes a stored blob; false means the file on disk was altered after it was stored. */
  async verify(digest: string): Promise<boolean> {
    const location = locateBlob(this.root, digest);
    const hasher = new Bun.CryptoHasher(location.algorithm);
    for await (const chunk of await this.open(location.digest)) hasher.update(chunk);
    return hasher.digest("hex") === location.hex;
  }

  /** Removes a blob; false when it was not there. */
  async delete(digest: string): Promise<boolean> {
    const location = locateBlob(this.root, digest);
    try {
      await unlink(location.path);
      return true;
    } catch (err) {
      if ((err as { code?: string }).code === "ENOENT") return false;
      throw new MagikError("StorageWriteFailed", `cannot delete blob ${location.digest}`, {
        cause: err,
        details: { digest: location.digest, path: location.path, errno: (err as { code?: unknown }).code },
      });
    }
  }

  /** Every stored blob, sorted by digest. Files that are not blobs (wrong name or shard) are ignored. */
  list(): Promise<BlobInfo[]> {
    return listBlobs(this.root);
  }

  async totalSize(): Promise<number> {
    let total = 0;
    for (const blob of await this.list()) total += blob.size;
    return total;
  }

  /**
   * Removes every blob not in `referenced`, and stale temp files. All referenced digests are validated before
   * anything is removed. The caller must keep puts of blobs it is about to reference out of the way while gc runs.
   */
  async gc(referenced: Iterable<string>): Promise<GcResult> {
    const keep = new Set<string>();
    for (const digest of referenced) keep.add(parseDigest(digest).digest);
    const removed: string[] = [];
    let bytesFreed = 0;
    for (const blob of await this.list()) {
      if (keep.has(blob.digest)) continue;
      if (await this.delete(blob.digest)) {
        removed.push(blob.digest);
        bytesFreed += blob.size;
      }
    }
    const tempFilesRemoved = (await this.removeStaleTempFiles()).length;
    return { removed, bytesFreed, tempFilesRemoved };
  }

  /** Removes temp files whose writer is gone (done on open; exposed for long-running processes). */
  removeStaleTempFiles(): Promise<string[]> {
    return removeStaleTempFiles(this.#tmpDir, { maxAgeMs: this.#staleTempAfterMs });
  }

  /**
   * Stores content under its digest. The content is hashed as it is written and checked against `options.digest`
   * and `options.size`; limits are enforced while streaming. Any failure leaves nothing behind and cancels the
   * source. Errors thrown by the source itself are passed through unchanged.
   */
  async put(source: BlobSource, options: PutOptions = {}): Promise<PutResult> {
    let rules: WriteRules;
    let location: BlobLocation | undefined;
    try {
      if (!isBlobSource(source)) {
        throw new MagikError("InvalidInput", "put needs bytes, a ReadableStream or an async iterable", {
          details: { sourceType: source === null ? "null" : typeof source },
        });
      }
      if (source instanceof ReadableStream && source.locked) {
        throw new MagikError("InvalidInput", "put needs a stream nobody else is reading (it is locked)", {
          details: { sourceType: "ReadableStream", locked: true },
        });
      }
      ({ rules, location } = this.#rulesFor(options));
    } catch (err) {
      discardSource(source, err);
      throw err;
    }
    if (location === undefined) return this.#putOnce(source, rules, undefined);
    const key = location.digest;
    for (let pending = this.#inflight.get(key); pending; pending = this.#inflight.get(key)) {
      await pending.catch(() => {});
    }
    const run = this.#putOnce(source, rules, location);
    this.#inflight.set(key, run);
    try {
      return await run;
    } finally {
      if (this.#inflight.get(key) === run) this.#inflight.delete(key);
    }
  }

  #rulesFor(options: PutOptions): { rules: WriteRules; location: BlobLocation | undefined } {
    const location = options.digest === undefined ? undefined : locateBlob(this.root, options.digest);
    const rules: WriteRules = {
      algorithm: location?.algorithm ?? "sha256",
      maxSize: options.maxSize === undefined ? this.maxBlobSize : positiveInteger("maxSize", options.maxSize),
    };
    if (location) rules.digest = location.digest;
    if (options.size !== undefined) {
      if (!Number.isSafeInteger(options.size) || options.size < 0) {
        throw new MagikError("InvalidInput", `expected size must be a non-negative integer`, {
          details: { size: options.size },
        });
      }
      if (options.size > rules.maxSize) throw tooLarge(rules, options.size);
      rules.size = options.size;
    }
    if (options.signal) {
      if (options.signal.aborted) throw cancelled(options.signal);
      rules.signal = options.signal;
    }
    if (options.onProgress) rules.onProgress = options.onProgress;
    return { rules, location };
  }

  async #putOnce(
    source: BlobSource,
    rules: WriteRules,
    location: BlobLocation | undefined,
  ): Promise<PutResult> {
    try {
      if (location) {
        const existing = await this.#existing(location, rules);
        if (existing) {
          discardSource(source);
          return existing;
        }
      }
      const tempPath = join(this.#tmpDir, tempFileName());
      if (source instanceof Uint8Array) return await this.#putBytes(source, rules, tempPath);
      const written = await streamToTempFile(chunkReader(source), tempPath, rules);
      const existed = await commitBlob(tempPath, locateBlob(this.root, written.digest));
      return { ...written, existed };
    } catch (err) {
      discardSource(source, err);
      throw err;
    }
  }

  async #putBytes(bytes: Uint8Array, rules: WriteRules, tempPath: string): Promise<PutResult> {
    if (bytes.length > rules.maxSize) throw tooLarge(rules, bytes.length);
    if (rules.size !== undefined && bytes.length !== rules.size) throw sizeMismatch(rules, bytes.length);
    const hasher = new Bun.CryptoHasher(rules.algorithm);
    hasher.update(bytes);
    const written = checkDigest(rules, `${rules.algorithm}:${hasher.digest("hex")}`, bytes.length);
    const location = locateBlob(this.root, written.digest);
    const existing = await this.#existing(location, rules);
    if (existing) return existing;
    await bytesToTempFile(bytes, tempPath);
    if (rules.signal?.aborted) {
      await unlink(tempPath).catch(() => {});
      throw cancelled(rules.signal);
    }
    return { ...written, existed: await commitBlob(tempPath, location) };
  }

  /** The stored blob as a put result, or undefined. A stored size contradicting the expected one is refused. */
  async #existing(location: BlobLocation, rules: WriteRules): Promise<PutResult | undefined> {
    const info = await stat(location.path).catch(() => undefined);
    if (!info?.isFile()) return undefined;
    if (rules.size !== undefined && info.size !== rules.size) throw sizeMismatch(rules, info.size);
    return { digest: location.digest, size: info.size, existed: true };
  }
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new MagikError("InvalidInput", `${name} must be a positive integer, got ${value}`, {
      details: { [name]: value },
    });
  }
  return value;
}

function blobNotFound(location: BlobLocation): MagikError {
  return new MagikError("BlobNotFound", `blob ${location.digest} is not in the store`, {
    details: { digest: location.digest },
  });
}

function notFoundOr(err: unknown, location: BlobLocation): never {
  if ((err as { code?: string }).code === "ENOENT") throw blobNotFound(location);
  throw new MagikError("StorageWriteFailed", `cannot read blob ${location.digest}`, {
    cause: err,
    details: { digest: location.digest, path: location.path, errno: (err as { code?: unknown }).code },
  });
}
