import { writeSync } from "node:fs";
import { type FileHandle, open, unlink } from "node:fs/promises";
import { type MagikError, toMagikError } from "@magikrun/spec";

// Blobs are immutable once committed; the writer's own fd stays writable regardless of this mode.
const BLOB_MODE = 0o444;

export function writeFailed(err: unknown, path: string): MagikError {
  const error = toMagikError(err, "StorageWriteFailed", "writing a blob failed");
  if (error.code === "StorageWriteFailed") error.details.path = path;
  return error;
}

/** Appends a chunk to the temp file; throws StorageWriteFailed. */
export type AppendChunk = (chunk: Uint8Array) => void;

/**
 * Creates `tempPath` exclusively, lets `fill` append to it, and fsyncs it. On any failure the temp file is
 * removed, so a refused or failed put leaves nothing behind.
 */
export async function writeTempFile<T>(
  tempPath: string,
  fill: (append: AppendChunk) => T | Promise<T>,
): Promise<T> {
  let handle: FileHandle | undefined;
  try {
    try {
      handle = await open(tempPath, "wx", BLOB_MODE);
    } catch (err) {
      throw writeFailed(err, tempPath);
    }
    const fd = handle.fd;
    const result = await fill((chunk) => writeAll(fd, chunk, tempPath));
    try {
      // Measured: starting writeback early (background fdatasync or sync_file_range every 8-32 MiB) does not
      // shorten this on a 2-core machine; the kernel's writeback competes with hashing for the CPU.
      await handle.sync();
      const closing = handle;
      handle = undefined;
      await closing.close();
    } catch (err) {
      throw writeFailed(err, tempPath);
    }
    return result;
  } catch (err) {
    await handle?.close().catch(() => {});
    await unlink(tempPath).catch(() => {});
    throw err;
  }
}

/**
 * Synchronous writes on purpose: a chunk lands in the page cache in well under a millisecond, while an async write
 * per chunk costs a thread-pool round trip that measurably slows the pull hot path.
 */
function writeAll(fd: number, chunk: Uint8Array, path: string): void {
  try {
    let offset = 0;
    while (offset < chunk.length) offset += writeSync(fd, chunk, offset, chunk.length - offset);
  } catch (err) {
    throw writeFailed(err, path);
  }
}
