import { readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { isMagikError } from "@magikrun/spec";
import { afterAll, describe, expect, it } from "vitest";
import { InstrumentCache } from "./cache.ts";
import { Scratch } from "./testing/fixtures.ts";
import { countWat } from "./testing/modules.ts";
import { wat } from "./testing/wat.ts";

const scratch = new Scratch();
afterAll(() => scratch.cleanup());
const OPTIONS = { maxMemoryPages: 16, meter: true };

describe("InstrumentCache", () => {
  it("rewrites once, then serves from memory, and another cache on the same dir from disk", async () => {
    const dir = scratch.path("cache-a");
    const bytes = await wat(countWat(10));
    const cache = new InstrumentCache(dir);
    const first = await cache.prepare(bytes, OPTIONS);
    expect(first.source).toBe("rewrite");
    expect((await cache.prepare(bytes, OPTIONS)).source).toBe("memory");
    const fromDisk = await new InstrumentCache(dir).prepare(bytes, OPTIONS);
    expect(fromDisk).toMatchObject({ source: "disk", digest: first.digest });
    expect(WebAssembly.Module.imports(fromDisk.module)).toEqual(WebAssembly.Module.imports(first.module));
  });

  it("keys by the rewrite's parameters: another page limit is another rewrite", async () => {
    const cache = new InstrumentCache();
    const bytes = await wat(countWat(20));
    await cache.prepare(bytes, OPTIONS);
    expect((await cache.prepare(bytes, { ...OPTIONS, maxMemoryPages: 8 })).source).toBe("rewrite");
    expect((await cache.prepare(bytes, { ...OPTIONS, meter: false })).source).toBe("rewrite");
  });

  it("rewrites again when the disk copy is damaged", async () => {
    const dir = scratch.path("cache-b");
    const bytes = await wat(countWat(30));
    await new InstrumentCache(dir).prepare(bytes, OPTIONS);
    for (const name of readdirSync(dir).filter((n) => n.endsWith(".wasm")))
      writeFileSync(join(dir, name), "junk");
    expect((await new InstrumentCache(dir).prepare(bytes, OPTIONS)).source).toBe("rewrite");
  });

  it("refuses an invalid module before rewriting, and caches nothing for it", async () => {
    const dir = scratch.path("cache-c");
    const cache = new InstrumentCache(dir);
    const bytes = await wat(countWat(40));
    const broken = bytes.slice(0, bytes.length - 4);
    await expect(cache.prepare(broken, OPTIONS, "/x/broken.wasm")).rejects.toSatisfy(
      (err) => isMagikError(err, "InvalidBundle") && err.details.path === "/x/broken.wasm",
    );
    expect(() => readdirSync(dir)).toThrow();
  });
});
