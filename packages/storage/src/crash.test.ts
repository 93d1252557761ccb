import { utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { BlobStore } from "./blob-store.ts";
import { digestOf, makeTempDir, tempEntries } from "./test-support.ts";

let dir: { path: string; cleanup: () => Promise<void> };
beforeEach(async () => {
  dir = await makeTempDir();
});
afterEach(() => dir.cleanup());

const FIXTURE = new URL("./fixtures/slow-put.ts", import.meta.url).pathname;
// Same content as the fixture writes: 64 chunks of 1 MiB of 0x5a.
const CONTENT_DIGEST = digestOf(new Uint8Array(64 * 1024 * 1024).fill(0x5a));

async function readUntil(stream: ReadableStream<Uint8Array>, marker: string): Promise<string> {
  const decoder = new TextDecoder();
  let text = "";
  for await (const chunk of stream) {
    text += decoder.decode(chunk, { stream: true });
    if (text.includes(marker)) break;
  }
  return text;
}

describe("crash during put", () => {
  it("a writer killed with SIGKILL mid-put leaves no visible blob, and reopening removes its temp file", async () => {
    const root = join(dir.path, "root");
    // 200 ms between chunks: the put would need ~12 s more, far longer than reaching the kill below takes.
    const child = Bun.spawn([process.execPath, FIXTURE, root, CONTENT_DIGEST, "200"], {
      stdout: "pipe",
      stderr: "pipe",
    });
    try {
      expect(await readUntil(child.stdout, "writing")).toContain("writing");
      const [temp] = await tempEntries(root);
      expect(temp).toMatch(new RegExp(`^${child.pid}-[0-9a-f]{16}\\.tmp$`));
      expect(Bun.file(join(root, "blobs", "tmp", temp!)).size).toBeGreaterThan(0);
      process.kill(child.pid, "SIGKILL");
      expect(await child.exited).not.toBe(0);
      expect(child.signalCode).toBe("SIGKILL");
    } finally {
      if (child.exitCode === null && child.signalCode === null) process.kill(child.pid, "SIGKILL");
    }
    const afterCrash = await BlobStore.open(root);
    expect(await afterCrash.has(CONTENT_DIGEST)).toBe(false);
    expect(await afterCrash.list()).toEqual([]);
    expect(await tempEntries(root)).toEqual([]);
  });

  it("the same writer left alone stores the blob (the kill above is what prevented it)", async () => {
    const root = join(dir.path, "root");
    const child = Bun.spawn([process.execPath, FIXTURE, root, CONTENT_DIGEST, "0"], { stdout: "pipe" });
    expect(await child.exited).toBe(0);
    const store = await BlobStore.open(root);
    expect(await store.list()).toEqual([{ digest: CONTENT_DIGEST, size: 64 * 1024 * 1024 }]);
  });
});

describe("stale temp files", () => {
  it("opening keeps temp files of live writers and removes dead, foreign and old ones", async () => {
    const store = await BlobStore.open(dir.path, { staleTempAfterMs: 60_000 });
    const tmp = join(dir.path, "blobs", "tmp");
    const live = `${process.pid}-0123456789abcdef.tmp`;
    const liveButOld = `${process.pid}-fedcba9876543210.tmp`;
    // Pid 2^22+1 is above Linux's pid_max ceiling, so no process can have it.
    const dead = `${2 ** 22 + 1}-0123456789abcdef.tmp`;
    const foreign = "leftover.part";
    for (const name of [live, liveButOld, dead, foreign]) await writeFile(join(tmp, name), "partial");
    const hourAgo = new Date(Date.now() - 3_600_000);
    await utimes(join(tmp, liveButOld), hourAgo, hourAgo);

    await BlobStore.open(dir.path, { staleTempAfterMs: 60_000 });
    expect(await tempEntries(dir.path)).toEqual([live]);
    const gc = await store.gc([]);
    expect(gc.tempFilesRemoved).toBe(0);
    expect(await tempEntries(dir.path)).toEqual([live]);
  });
});
