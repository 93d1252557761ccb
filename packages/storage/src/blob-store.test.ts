import { readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { BlobStore } from "./blob-store.ts";
import { bytesOf, digestOf, magikErrorOf, makeTempDir, patternBytes } from "./test-support.ts";

let dir: { path: string; cleanup: () => Promise<void> };
let store: BlobStore;

beforeEach(async () => {
  dir = await makeTempDir();
  store = await BlobStore.open(join(dir.path, "root"));
});
afterEach(() => dir.cleanup());

const HELLO = bytesOf("hello");
const HELLO_DIGEST = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

async function streamText(stream: ReadableStream<Uint8Array>): Promise<string> {
  return new Response(stream).text();
}

describe("BlobStore layout", () => {
  it("creates its directories on open and resolves a relative root", async () => {
    expect((await stat(join(dir.path, "root", "blobs", "sha256"))).isDirectory()).toBe(true);
    expect((await stat(join(dir.path, "root", "blobs", "tmp"))).isDirectory()).toBe(true);
    expect(store.root).toBe(join(dir.path, "root"));
  });

  it("stores blobs at blobs/sha256/<first two hex>/<hex> and reports the same path", async () => {
    const result = await store.put(HELLO);
    expect(result).toEqual({ digest: HELLO_DIGEST, size: 5, existed: false });
    const expected = join(store.root, "blobs", "sha256", "2c", HELLO_DIGEST.slice("sha256:".length));
    expect(store.path(HELLO_DIGEST)).toBe(expected);
    expect(await readFile(expected, "utf8")).toBe("hello");
    // Committed blobs are read-only: nothing should rewrite them in place.
    expect((await stat(expected)).mode & 0o222).toBe(0);
  });

  it("refuses bad options to open", async () => {
    await magikErrorOf(BlobStore.open(dir.path, { maxBlobSize: 0 }), "InvalidInput");
    await magikErrorOf(BlobStore.open(dir.path, { maxBlobSize: 1.5 }), "InvalidInput");
    await magikErrorOf(BlobStore.open(""), "InvalidInput");
  });

  it("reports StorageWriteFailed when the root cannot be created", async () => {
    const file = join(dir.path, "a-file");
    await writeFile(file, "x");
    const err = await magikErrorOf(BlobStore.open(join(file, "root")), "StorageWriteFailed");
    expect(err.details.errno).toBe("ENOTDIR");
  });
});

describe("BlobStore reads", () => {
  it("has, stat, read, open and verify a stored blob", async () => {
    await store.put(HELLO);
    expect(await store.has(HELLO_DIGEST)).toBe(true);
    const info = await store.stat(HELLO_DIGEST);
    expect(info).toMatchObject({ digest: HELLO_DIGEST, size: 5, path: store.path(HELLO_DIGEST) });
    expect(new TextDecoder().decode(await store.read(HELLO_DIGEST))).toBe("hello");
    expect(await streamText(await store.open(HELLO_DIGEST))).toBe("hello");
    expect(await store.verify(HELLO_DIGEST)).toBe(true);
  });

  it("streams large blobs in order, across many chunks", async () => {
    const data = patternBytes(3 * 1024 * 1024 + 17);
    const { digest } = await store.put(data);
    const stream = await store.open(digest);
    const out = new Uint8Array(await new Response(stream).arrayBuffer());
    expect(out.length).toBe(data.length);
    expect(digestOf(out)).toBe(digest);
  });

  it("closes the file when a reader cancels part-way or reads to the end", async () => {
    const { digest } = await store.put(patternBytes(3 * 1024 * 1024));
    const openFds = () => readdir("/proc/self/fd").then((fds) => fds.length);
    const before = await openFds();
    const partial = (await store.open(digest)).getReader();
    expect((await partial.read()).value?.length).toBe(1024 * 1024);
    expect(await openFds()).toBe(before + 1);
    await partial.cancel();
    expect(await openFds()).toBe(before);
    await new Response(await store.open(digest)).arrayBuffer();
    expect(await openFds()).toBe(before);
  });

  it("throws BlobNotFound for a missing blob, naming the digest", async () => {
    expect(await store.has(HELLO_DIGEST)).toBe(false);
    for (const call of [
      () => store.stat(HELLO_DIGEST),
      () => store.read(HELLO_DIGEST),
      () => store.open(HELLO_DIGEST),
      () => store.verify(HELLO_DIGEST),
    ]) {
      const err = await magikErrorOf(call, "BlobNotFound");
      expect(err.details.digest).toBe(HELLO_DIGEST);
    }
  });

  it("detects a blob altered on disk after it was stored", async () => {
    const { digest } = await store.put(HELLO);
    const path = store.path(digest);
    await Bun.write(path, "jello");
    expect(await store.verify(digest)).toBe(false);
  });
});

describe("digest validation", () => {
  const bad = [
    `sha256:../../../../etc/passwd${"0".repeat(42)}`,
    `sha256:${"A".repeat(64)}`,
    `sha256:${"a".repeat(63)}\0`,
    `sha256:${"a".repeat(63)}`,
    `md5:${"a".repeat(32)}`,
    `sha256:${"a".repeat(62)}/a`,
    "../blobs",
    "",
  ];

  it.each(bad)("refuses %j with InvalidInput in every method, before touching the disk", async (digest) => {
    const before = await readdir(join(store.root, "blobs"), { recursive: true });
    await magikErrorOf(() => store.path(digest), "InvalidInput");
    await magikErrorOf(() => store.has(digest), "InvalidInput");
    await magikErrorOf(() => store.stat(digest), "InvalidInput");
    await magikErrorOf(() => store.read(digest), "InvalidInput");
    await magikErrorOf(() => store.open(digest), "InvalidInput");
    await magikErrorOf(() => store.delete(digest), "InvalidInput");
    await magikErrorOf(() => store.gc([digest]), "InvalidInput");
    const err = await magikErrorOf(() => store.put(HELLO, { digest }), "InvalidInput");
    expect(err.details.digest).toBe(digest);
    expect(await readdir(join(store.root, "blobs"), { recursive: true })).toEqual(before);
  });

  it("supports sha512 blobs side by side with sha256", async () => {
    const digest = digestOf(HELLO, "sha512");
    const result = await store.put(HELLO, { digest });
    expect(result).toEqual({ digest, size: 5, existed: false });
    expect(store.path(digest)).toContain(join("blobs", "sha512", digest.slice(7, 9)));
    await store.put(HELLO);
    expect((await store.list()).map((b) => b.digest).sort()).toEqual([HELLO_DIGEST, digest].sort());
    expect(await store.verify(digest)).toBe(true);
  });
});

describe("delete, list, totalSize, gc", () => {
  it("lists blobs sorted with sizes, ignoring stray files, and sums them", async () => {
    const a = await store.put(patternBytes(1000, 1));
    const b = await store.put(patternBytes(2000, 2));
    const c = await store.put(patternBytes(3000, 3));
    // Not blobs: wrong shard, bad name, a file in the algorithm dir.
    const hex = "f".repeat(64);
    await Bun.write(join(store.root, "blobs", "sha256", "00", hex), "stray");
    await Bun.write(join(store.root, "blobs", "sha256", "ff", "not-a-digest"), "stray");
    await Bun.write(join(store.root, "blobs", "sha256", "README"), "stray");
    const listed = await store.list();
    expect(listed).toEqual(
      [a, b, c]
        .map((r) => ({ digest: r.digest, size: r.size }))
        .sort((x, y) => x.digest.localeCompare(y.digest)),
    );
    expect(await store.totalSize()).toBe(6000);
  });

  it("deletes a blob once, then reports it absent", async () => {
    const { digest } = await store.put(HELLO);
    expect(await store.delete(digest)).toBe(true);
    expect(await store.has(digest)).toBe(false);
    expect(await store.delete(digest)).toBe(false);
    expect(await store.list()).toEqual([]);
  });

  it("gc removes unreferenced blobs only and reports count and bytes freed", async () => {
    const keep = await store.put(patternBytes(1234, 1));
    const drop1 = await store.put(patternBytes(100, 2));
    const drop2 = await store.put(patternBytes(50, 3));
    const result = await store.gc([keep.digest]);
    expect(result.removed.sort()).toEqual([drop1.digest, drop2.digest].sort());
    expect(result.bytesFreed).toBe(150);
    expect(await store.list()).toEqual([{ digest: keep.digest, size: 1234 }]);
    expect(await store.gc(new Set([keep.digest]))).toEqual({
      removed: [],
      bytesFreed: 0,
      tempFilesRemoved: 0,
    });
  });

  it("gc removes nothing when one referenced digest is malformed", async () => {
    const blob = await store.put(HELLO);
    await magikErrorOf(() => store.gc(["sha256:nope"]), "InvalidInput");
    expect(await store.has(blob.digest)).toBe(true);
  });
});
