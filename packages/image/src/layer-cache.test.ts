import fs from "node:fs";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { chainIds, LayerCache } from "./layer-cache.ts";
import { RootfsManager } from "./rootfs.ts";
import type { TarEntry } from "./tar-writer.ts";
import { makeTestRoot, storeLayers, type TestRoot } from "./unpack/test-image.ts";

let root: TestRoot;
beforeEach(async () => {
  root = await makeTestRoot("magik-cache-");
});
afterEach(() => root.cleanup());

const file = (p: string, data: string): TarEntry => ({ type: "file", path: p, data });

describe("LayerCache", () => {
  it("keys layers by chain id, so the same diff over other lowers is unpacked separately", async () => {
    const top: TarEntry[] = [file("lib/x", "x")];
    const plain = await storeLayers(root.store, [[file("base", "1")], top]);
    const symlinked = await storeLayers(root.store, [
      [
        { type: "dir", path: "usr/lib" },
        { type: "symlink", path: "lib", target: "usr/lib" },
      ],
      top,
    ]);
    const cache = new LayerCache(root.dir, root.store);
    const [, a] = await cache.unpackImage(plain);
    const [, b] = await cache.unpackImage(symlinked);
    expect(a!.meta.diffId).toBe(b!.meta.diffId);
    expect(a!.meta.chainId).not.toBe(b!.meta.chainId);
    expect(fs.existsSync(path.join(a!.dir, "lib/x"))).toBe(true);
    expect(fs.existsSync(path.join(b!.dir, "usr/lib/x"))).toBe(true);
    expect(chainIds(plain.config.rootfs.diff_ids)[1]).toBe(a!.meta.chainId);
  });

  it("concurrent unpacks of a layer end with one cached copy and no temp dirs", async () => {
    const image = await storeLayers(root.store, [[file("a", "a")]]);
    const cache = new LayerCache(root.dir, root.store);
    const [first, second] = await Promise.all([cache.unpackImage(image), cache.unpackImage(image)]);
    expect(first[0]!.dir).toBe(second[0]!.dir);
    expect(fs.readdirSync(path.join(root.dir, "layers/tmp"))).toEqual([]);
  });

  it("prunes layers no image references, keeping those an assembled rootfs uses", async () => {
    const kept = await storeLayers(root.store, [[file("base", "1")], [file("kept", "k")]]);
    const dropped = await storeLayers(root.store, [[file("base", "1")], [file("dropped", "d")]]);
    const mounted = await storeLayers(root.store, [[file("mounted", "m")]]);
    const cache = new LayerCache(root.dir, root.store);
    await cache.unpackImage(kept);
    await cache.unpackImage(dropped);
    const rootfs = new RootfsManager(cache);
    const id = `prune-${process.pid}`;
    await rootfs.assemble(mounted, id);
    try {
      const { removed } = await cache.prune({ images: [kept.config.rootfs.diff_ids] });
      expect(removed).toEqual([chainIds(dropped.config.rootfs.diff_ids)[1]]);
      for (const chainId of chainIds(kept.config.rootfs.diff_ids)) expect(cache.get(chainId)).toBeDefined();
      expect(cache.get(mounted.config.rootfs.diff_ids[0]!)).toBeDefined();
    } finally {
      rootfs.release(id);
    }
  });
});
