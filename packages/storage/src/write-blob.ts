import { link, mkdir, open, rename, unlink } from "node:fs/promises";
import { dirname } from "node:path";
import { type DigestAlgorithm, MagikError } from "@magikrun/spec";
import type { BlobLocation } from "./layout.ts";
import type { ChunkReader } from "./source.ts";
import { writeFailed, writeTempFile } from "./temp-writer.ts";

/** What a written blob must match; checked while the bytes arrive, so a bad source is cut off early. */
export interface WriteRules {
  algorithm: DigestAlgorithm;
  /** Canonical digest the content must hash to, when the caller knows it. */
  digest?: string;
  /** Exact size the content must have, when the caller knows it. */
  size?: number;
  /** Bytes beyond this are refused with ImageTooLarge, as soon as they arrive. */
  maxSize: number;
  signal?: AbortSignal;
  onProgress?: (bytesWritten: number) => void;
}

export interface WrittenBlob {
  digest: string;
  size: number;
}

export function tooLarge(rules: WriteRules, value: number): MagikError {
  return new MagikError("ImageTooLarge", `blob exceeds the size limit of ${rules.maxSize} bytes`, {
    details: {
      limit: "maxBlobSize",
      max: rules.maxSize,
      value,
      ...(rules.digest && { digest: rules.digest }),
    },
    hint: "Raise maxBlobSize for this store, or maxSize for this put, if this blob is expected.",
  });
}

export function sizeMismatch(rules: WriteRules, actualSize: number | string): MagikError {
  return new MagikError("DigestMismatch", `blob size ${actualSize} differs from the expected ${rules.size}`, {
    details: { expectedSize: rules.size, actualSize, ...(rules.digest && { digest: rules.digest }) },
  });
}

export function cancelled(signal: AbortSignal): MagikError {
  return new MagikError("Cancelled", "put was cancelled", { cause: signal.reason });
}

/** Hashes and checks every chunk as it is written to `tempPath`; the file is fsynced when this resolves. */
export async function streamToTempFile(
  reader: ChunkReader,
  tempPath: string,
  rules: WriteRules,
): Promise<WrittenBlob> {
  const hasher = new Bun.CryptoHasher(rules.algorithm);
  const { signal } = rules;
  // Rejects the read being awaited when the signal fires, so a stalled source cannot hold a cancelled put. One
  // fresh promise per read: racing every read against one long-lived abort promise would pile up handlers on it.
  let rejectRead: ((err: unknown) => void) | undefined;
  const onAbort = () => rejectRead?.(cancelled(signal!));
  signal?.addEventListener("abort", onAbort, { once: true });
  const nextChunk = (): Promise<Uint8Array | undefined> => {
    if (!signal) return reader.next();
    if (signal.aborted) return Promise.reject(cancelled(signal));
    return new Promise((resolve, reject) => {
      rejectRead = reject;
      reader.next().then(resolve, reject);
    });
  };
  let size = 0;
  try {
    return await writeTempFile(tempPath, async (append) => {
      for (;;) {
        const chunk = await nextChunk();
        if (chunk === undefined) break;
        size += chunk.length;
        if (size > rules.maxSize) throw tooLarge(rules, size);
        if (rules.size !== undefined && size > rules.size)
          throw sizeMismatch(rules, `more than ${rules.size}`);
        hasher.update(chunk);
        append(chunk);
        rules.onProgress?.(size);
      }
      if (signal?.aborted) throw cancelled(signal);
      if (rules.size !== undefined && size !== rules.size) throw sizeMismatch(rules, size);
      return checkDigest(rules, `${rules.algorithm}:${hasher.digest("hex")}`, size);
    });
  } catch (err) {
    reader.cancel(err);
    throw err;
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
}

/** Writes bytes already in memory (and already verified) to `tempPath`, fsynced. */
export async function bytesToTempFile(bytes: Uint8Array, tempPath: string): Promise<void> {
  await writeTempFile(tempPath, (append) => append(bytes));
}

export function checkDigest(rules: WriteRules, actual: string, size: number): WrittenBlob {
  if (rules.digest !== undefined && actual !== rules.digest) {
    throw new MagikError("DigestMismatch", `content hashes to ${actual}, expected ${rules.digest}`, {
      details: { expected: rules.digest, actual, size },
    });
  }
  return { digest: actual, size };
}

// Filesystems without hard links; there rename (which replaces atomically) is the commit instead.
const NO_HARD_LINKS = new Set(["EPERM", "ENOTSUP", "EOPNOTSUPP", "ENOSYS", "EMLINK"]);

/**
 * Makes a verified, fsynced temp file visible under its digest. `link` rather than `rename` so that an existing
 * blob is never replaced: the loser of a race learns it lost (EEXIST) and just drops its copy. Returns whether the
 * blob already existed.
 */
export async function commitBlob(tempPath: string, location: BlobLocation): Promise<boolean> {
  try {
    const created = await mkdir(location.dir, { recursive: true, mode: 0o755 });
    // A new shard (or algorithm) directory is itself a directory entry that must survive a crash.
    if (created !== undefined) {
      await fsyncDir(dirname(location.dir));
      await fsyncDir(dirname(dirname(location.dir)));
    }
    let existed = false;
    try {
      await link(tempPath, location.path);
    } catch (err) {
      const code = (err as { code?: string }).code ?? "";
      if (code === "EEXIST") existed = true;
      else if (NO_HARD_LINKS.has(code)) await rename(tempPath, location.path);
      else throw err;
    }
    if (!existed) await fsyncDir(location.dir);
    return existed;
  } catch (err) {
    throw writeFailed(err, location.path);
  } finally {
    await unlink(tempPath).catch(() => {});
  }
}

export async function fsyncDir(path: string): Promise<void> {
  const handle = await open(path, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
