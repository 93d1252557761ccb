import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isMagikError, type MagikError, type MagikErrorCode } from "@magikrun/spec";

/** Shared by this package's tests only. */

export async function makeTempDir(): Promise<{ path: string; cleanup: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), "magikrun-storage-test-"));
  return { path, cleanup: () => rm(path, { recursive: true, force: true }) };
}

/** Awaits `work` and returns the MagikError it rejected with, failing when it resolved or threw anything else. */
export async function magikErrorOf(
  work: Promise<unknown> | (() => unknown),
  code: MagikErrorCode,
): Promise<MagikError> {
  let caught: unknown;
  try {
    await (typeof work === "function" ? work() : work);
  } catch (err) {
    caught = err;
  }
  if (!isMagikError(caught)) throw new Error(`expected MagikError ${code}, got ${String(caught)}`);
  if (caught.code !== code)
    throw new Error(`expected MagikError ${code}, got ${caught.code}: ${caught.message}`);
  return caught;
}

export function bytesOf(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

export function digestOf(data: Uint8Array | string, algorithm: "sha256" | "sha512" = "sha256"): string {
  return `${algorithm}:${new Bun.CryptoHasher(algorithm).update(data).digest("hex")}`;
}

/** Deterministic pseudo-random content, so failures reproduce. */
export function patternBytes(size: number, seed = 1): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** Async generator over `data` in `chunkSize` pieces, counting how many chunks the consumer pulled. */
export function chunked(
  data: Uint8Array,
  chunkSize: number,
  counter?: { pulled: number },
): AsyncIterable<Uint8Array> {
  return (async function* () {
    for (let offset = 0; offset < data.length; offset += chunkSize) {
      if (counter) counter.pulled++;
      yield data.subarray(offset, offset + chunkSize);
    }
  })();
}

/** What is left in the store's temp directory. */
export function tempEntries(root: string): Promise<string[]> {
  return readdir(join(root, "blobs", "tmp"));
}
