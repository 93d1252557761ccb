import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { BlobStore } from "./blob-store.ts";
import {
  bytesOf,
  chunked,
  digestOf,
  magikErrorOf,
  makeTempDir,
  patternBytes,
  tempEntries,
} from "./test-support.ts";

let dir: { path: string; cleanup: () => Promise<void> };
let store: BlobStore;

beforeEach(async () => {
  dir = await makeTempDir();
  store = await BlobStore.open(dir.path);
});
afterEach(() => dir.cleanup());

/** The store holds exactly `digests` and no temp file. */
async function expectStoreHolds(digests: string[]): Promise<void> {
  expect((await store.list()).map((b) => b.digest)).toEqual([...digests].sort());
  expect(await tempEntries(store.root)).toEqual([]);
}

/** A stream that yields `prefix` and then never ends, recording whether it was cancelled. */
function stallingStream(prefix: Uint8Array): {
  stream: ReadableStream<Uint8Array>;
  cancelled: Promise<unknown>;
} {
  let onCancel: (reason: unknown) => void = () => {};
  const cancelled = new Promise((resolve) => {
    onCancel = resolve;
  });
  let sent = false;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (!sent) controller.enqueue(prefix);
      sent = true;
      return new Promise(() => {});
    },
    cancel: (reason) => onCancel(reason),
  });
  return { stream, cancelled };
}

/** An endless stream of 64 KiB chunks, counting the bytes it handed out. */
function endlessStream(counter: { bytes: number }): ReadableStream<Uint8Array> {
  const chunk = new Uint8Array(64 * 1024);
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      counter.bytes += chunk.length;
      controller.enqueue(chunk);
    },
  });
}

describe("put sources", () => {
  const data = patternBytes(1024 * 1024 + 3);
  const digest = digestOf(data);

  it.each([
    ["bytes", () => data],
    ["a ReadableStream", () => new Response(data).body!],
    ["an async iterable", () => chunked(data, 7919)],
    ["an empty stream", () => chunked(new Uint8Array(0), 1)],
  ] as const)("accepts %s", async (name, make) => {
    const expected = name === "an empty stream" ? digestOf(new Uint8Array(0)) : digest;
    const result = await store.put(make());
    expect(result.digest).toBe(expected);
    expect(await store.verify(expected)).toBe(true);
    await expectStoreHolds([expected]);
  });

  it("reports progress as bytes written so far", async () => {
    const progress: number[] = [];
    await store.put(chunked(data, 256 * 1024), { onProgress: (n) => progress.push(n) });
    expect(progress).toEqual([262144, 524288, 786432, 1048576, 1048579]);
  });

  it("refuses a source that is not bytes or a stream, a locked stream, and chunks that are not bytes", async () => {
    await magikErrorOf(() => store.put("hello" as unknown as Uint8Array), "InvalidInput");
    const strings = (async function* () {
      yield "not bytes" as unknown as Uint8Array;
    })();
    await magikErrorOf(store.put(strings), "InvalidInput");
    const locked = new Response(bytesOf("x")).body!;
    const otherReader = locked.getReader();
    await magikErrorOf(store.put(locked), "InvalidInput");
    otherReader.releaseLock();
    await expectStoreHolds([]);
  });

  it("passes a failing source's own error through and leaves nothing behind", async () => {
    const failing = (async function* () {
      yield patternBytes(100_000);
      throw new Error("connection reset");
    })();
    await expect(store.put(failing)).rejects.toThrow("connection reset");
    await expectStoreHolds([]);
  });
});

describe("put verification", () => {
  const data = patternBytes(300_000);
  const digest = digestOf(data);
  const otherDigest = digestOf(bytesOf("something else"));

  it.each([
    ["bytes", () => data],
    ["a stream", () => chunked(data, 65536)],
  ] as const)(
    "rejects a digest mismatch from %s with DigestMismatch and stores nothing",
    async (_name, make) => {
      const err = await magikErrorOf(store.put(make(), { digest: otherDigest }), "DigestMismatch");
      expect(err.details).toEqual({ expected: otherDigest, actual: digest, size: data.length });
      expect(err.hint).toBeTruthy();
      await expectStoreHolds([]);
    },
  );

  it("rejects content shorter than the expected size", async () => {
    const err = await magikErrorOf(
      store.put(chunked(data, 65536), { digest, size: data.length + 1 }),
      "DigestMismatch",
    );
    expect(err.details).toMatchObject({ expectedSize: data.length + 1, actualSize: data.length });
    await magikErrorOf(store.put(data, { size: 1 }), "DigestMismatch");
    await expectStoreHolds([]);
  });

  it("stops reading as soon as the content outgrows the expected size", async () => {
    const counter = { bytes: 0 };
    const err = await magikErrorOf(store.put(endlessStream(counter), { size: 100_000 }), "DigestMismatch");
    expect(err.details.expectedSize).toBe(100_000);
    expect(counter.bytes).toBeLessThan(1024 * 1024);
    await expectStoreHolds([]);
  });

  it("refuses invalid expected sizes", async () => {
    for (const size of [-1, 1.5, Number.NaN]) await magikErrorOf(store.put(data, { size }), "InvalidInput");
    await magikErrorOf(store.put(data, { maxSize: 0 }), "InvalidInput");
  });
});

describe("put size limit", () => {
  it("enforces maxBlobSize while streaming, without reading the whole source", async () => {
    const small = await BlobStore.open(dir.path, { maxBlobSize: 256 * 1024 });
    const counter = { bytes: 0 };
    const err = await magikErrorOf(small.put(endlessStream(counter)), "ImageTooLarge");
    expect(err.details).toMatchObject({ limit: "maxBlobSize", max: 256 * 1024 });
    expect(err.details.value).toBeGreaterThan(256 * 1024);
    expect(counter.bytes).toBeLessThan(2 * 1024 * 1024);
    await expectStoreHolds([]);
  });

  it("accepts a blob of exactly the limit, refuses one byte more, from bytes too", async () => {
    const small = await BlobStore.open(dir.path, { maxBlobSize: 1000 });
    await small.put(patternBytes(1000));
    await magikErrorOf(small.put(patternBytes(1001)), "ImageTooLarge");
    await magikErrorOf(small.put(chunked(patternBytes(1001), 100)), "ImageTooLarge");
    expect(await small.list()).toHaveLength(1);
  });

  it("refuses up front an expected size above the limit, and lets one put raise the limit", async () => {
    const small = await BlobStore.open(dir.path, { maxBlobSize: 1000 });
    const data = patternBytes(5000);
    const counter = { pulled: 0 };
    await magikErrorOf(small.put(chunked(data, 100, counter), { size: 5000 }), "ImageTooLarge");
    expect(counter.pulled).toBe(0);
    expect((await small.put(data, { maxSize: 5000 })).size).toBe(5000);
  });
});

describe("put cancellation", () => {
  it("cancels a put whose source stalls, cancels the source and removes the temp file", async () => {
    const { stream, cancelled } = stallingStream(patternBytes(100_000));
    const controller = new AbortController();
    const progress: number[] = [];
    const put = store.put(stream, { signal: controller.signal, onProgress: (n) => progress.push(n) });
    while (progress.length === 0) await Bun.sleep(1);
    expect(await tempEntries(store.root)).toHaveLength(1);
    controller.abort(new Error("user pressed ^C"));
    await magikErrorOf(put, "Cancelled");
    await cancelled;
    await expectStoreHolds([]);
  });

  it("refuses to start with an already aborted signal", async () => {
    const counter = { pulled: 0 };
    await magikErrorOf(
      store.put(chunked(patternBytes(10), 5, counter), { signal: AbortSignal.abort() }),
      "Cancelled",
    );
    expect(counter.pulled).toBe(0);
    await expectStoreHolds([]);
  });
});

describe("deduplication", () => {
  const data = patternBytes(200_000);
  const digest = digestOf(data);

  it("does not rewrite an existing blob", async () => {
    expect((await store.put(data)).existed).toBe(false);
    const before = await stat(store.path(digest));
    await Bun.sleep(5);
    expect(await store.put(chunked(data, 4096))).toEqual({ digest, size: data.length, existed: true });
    expect(await store.put(data)).toEqual({ digest, size: data.length, existed: true });
    const after = await stat(store.path(digest));
    expect([after.ino, after.mtimeMs]).toEqual([before.ino, before.mtimeMs]);
    await expectStoreHolds([digest]);
  });

  it("does not read the source at all when the expected digest is stored, and cancels it", async () => {
    await store.put(data);
    const counter = { pulled: 0 };
    expect(await store.put(chunked(data, 4096, counter), { digest, size: data.length })).toEqual({
      digest,
      size: data.length,
      existed: true,
    });
    expect(counter.pulled).toBe(0);
    const { stream, cancelled } = stallingStream(data);
    expect((await store.put(stream, { digest })).existed).toBe(true);
    await cancelled;
  });

  it("refuses an expected size that contradicts the stored blob", async () => {
    await store.put(data);
    await magikErrorOf(store.put(data, { digest, size: 5 }), "DigestMismatch");
  });
});

describe("concurrent puts of one blob", () => {
  const data = patternBytes(4 * 1024 * 1024, 7);
  const digest = digestOf(data);

  async function blobFiles(): Promise<string[]> {
    return readdir(join(store.root, "blobs", "sha256", digest.slice(7, 9)));
  }

  it("both succeed and store one copy, without an expected digest", async () => {
    const results = await Promise.all([store.put(chunked(data, 65536)), store.put(chunked(data, 100_000))]);
    expect(results.map((r) => r.digest)).toEqual([digest, digest]);
    expect(results.filter((r) => !r.existed)).toHaveLength(1);
    expect(await blobFiles()).toEqual([digest.slice(7)]);
    await expectStoreHolds([digest]);
  });

  it("both succeed and the second does not write when the digest is expected", async () => {
    const counter = { pulled: 0 };
    const results = await Promise.all([
      store.put(chunked(data, 65536), { digest }),
      store.put(chunked(data, 65536, counter), { digest }),
    ]);
    expect(results.map((r) => r.existed)).toEqual([false, true]);
    expect(counter.pulled).toBe(0);
    await expectStoreHolds([digest]);
  });

  it("works across store instances (separate processes share a root this way)", async () => {
    const other = await BlobStore.open(store.root);
    const results = await Promise.all([
      store.put(chunked(data, 65536), { digest }),
      other.put(chunked(data, 65536), { digest }),
      other.put(data),
    ]);
    expect(results.every((r) => r.digest === digest)).toBe(true);
    expect(results.filter((r) => !r.existed)).toHaveLength(1);
    expect(await blobFiles()).toEqual([digest.slice(7)]);
    await expectStoreHolds([digest]);
  });

  it("never exposes a partial blob to a concurrent reader", async () => {
    let done = false;
    const seenSizes = new Set<number>();
    const reader = (async () => {
      while (!done) {
        const info = await stat(store.path(digest)).catch(() => undefined);
        if (info) seenSizes.add(info.size);
        await Bun.sleep(0);
      }
    })();
    const slow = (async function* () {
      for (let offset = 0; offset < data.length; offset += 512 * 1024) {
        await Bun.sleep(2);
        yield data.subarray(offset, offset + 512 * 1024);
      }
    })();
    await Promise.all([store.put(slow), store.put(chunked(data, 1 << 20))]);
    done = true;
    await reader;
    expect([...seenSizes].every((size) => size === data.length)).toBe(true);
    expect(await store.verify(digest)).toBe(true);
  });
});
