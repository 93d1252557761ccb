import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { BlobStore } from "./blob-store.ts";
import { chunked, magikErrorOf, patternBytes, tempEntries } from "./test-support.ts";

/**
 * A full disk, for real: a 1 MiB tmpfs. Mounting needs root (CI runs as root); elsewhere these tests skip.
 */
const mountPoint = mkdtempSync(join(tmpdir(), "magikrun-storage-full-"));
const isRoot = process.getuid?.() === 0;
const mounted =
  isRoot && Bun.spawnSync(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mountPoint]).exitCode === 0;

afterAll(() => {
  if (mounted) Bun.spawnSync(["umount", mountPoint]);
  rmSync(mountPoint, { recursive: true, force: true });
});

describe.skipIf(!mounted)("write failures (needs root to mount a tiny tmpfs)", () => {
  it("a full disk fails a streamed put with StorageWriteFailed and leaves nothing behind", async () => {
    const store = await BlobStore.open(mountPoint);
    const err = await magikErrorOf(
      store.put(chunked(patternBytes(2 * 1024 * 1024), 256 * 1024)),
      "StorageWriteFailed",
    );
    expect(err.details.errno).toBe("ENOSPC");
    expect(err.details.path).toContain(join(mountPoint, "blobs", "tmp"));
    expect(await tempEntries(mountPoint)).toEqual([]);
    expect(await store.list()).toEqual([]);
  });

  it("a full disk fails a put of bytes the same way, and the space is usable again afterwards", async () => {
    const store = await BlobStore.open(mountPoint);
    const err = await magikErrorOf(store.put(patternBytes(2 * 1024 * 1024)), "StorageWriteFailed");
    expect(err.details.errno).toBe("ENOSPC");
    expect(await tempEntries(mountPoint)).toEqual([]);
    const small = await store.put(patternBytes(512 * 1024));
    expect(await store.verify(small.digest)).toBe(true);
  });
});
