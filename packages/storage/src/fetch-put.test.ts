import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { BlobStore } from "./blob-store.ts";
import { digestOf, magikErrorOf, makeTempDir, patternBytes, tempEntries } from "./test-support.ts";

/** The pull hot path for real: fetch bodies from a local HTTP server on 127.0.0.1 (port chosen by the kernel). */
const BLOB = patternBytes(8 * 1024 * 1024, 11);
const BLOB_DIGEST = digestOf(BLOB);

let server: ReturnType<typeof Bun.serve>;
let slowBodyCancelled: () => void = () => {};
let slowCancelled: Promise<void>;

beforeAll(() => {
  server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req) {
      const path = new URL(req.url).pathname;
      if (path === "/blob") return new Response(BLOB);
      // Sends 64 KiB and then nothing, until the client goes away.
      slowCancelled = new Promise((resolve) => {
        slowBodyCancelled = resolve;
      });
      let sent = false;
      return new Response(
        new ReadableStream({
          async pull(controller) {
            if (!sent) controller.enqueue(BLOB.subarray(0, 65536));
            sent = true;
            await new Promise(() => {});
          },
          cancel: () => slowBodyCancelled(),
        }),
      );
    },
  });
});
afterAll(() => server.stop(true));

let dir: { path: string; cleanup: () => Promise<void> };
let store: BlobStore;
beforeEach(async () => {
  dir = await makeTempDir();
  store = await BlobStore.open(dir.path);
});
afterEach(() => dir.cleanup());

describe("put from fetch bodies", () => {
  it("stores a fetched blob verified against its descriptor", async () => {
    const response = await fetch(new URL("/blob", server.url));
    const result = await store.put(response.body!, { digest: BLOB_DIGEST, size: BLOB.length });
    expect(result).toEqual({ digest: BLOB_DIGEST, size: BLOB.length, existed: false });
    expect(await store.verify(BLOB_DIGEST)).toBe(true);
  });

  it("refuses a fetched body that does not match, leaving nothing", async () => {
    const response = await fetch(new URL("/blob", server.url));
    const wrong = digestOf("not this");
    await magikErrorOf(store.put(response.body!, { digest: wrong }), "DigestMismatch");
    expect(await store.list()).toEqual([]);
    expect(await tempEntries(dir.path)).toEqual([]);
  });

  it("cancelling a put of a stalled download closes the connection", async () => {
    const response = await fetch(new URL("/slow", server.url));
    const controller = new AbortController();
    const put = store.put(response.body!, {
      signal: controller.signal,
      onProgress: () => controller.abort(),
    });
    await magikErrorOf(put, "Cancelled");
    await slowCancelled;
    expect(await tempEntries(dir.path)).toEqual([]);
  });
});
