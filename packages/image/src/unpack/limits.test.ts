import fs from "node:fs";
import path from "node:path";
import { isMagikError } from "@magikrun/spec";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { chainIds, LayerCache } from "../layer-cache.ts";
import { compressStream, type TarEntry, tarBytes, tarStream } from "../tar-writer.ts";
import { makeImage, makeLayer } from "../test-support/fixture.ts";
import type { ResolvedImage } from "../types.ts";
import { makeTestRoot, storeFixture, storeLayers, type TestRoot } from "./test-image.ts";

let root: TestRoot;
beforeEach(async () => {
  root = await makeTestRoot();
});
afterEach(() => root.cleanup());

async function failure(image: ResolvedImage, limits: Record<string, number> = {}) {
  const cache = new LayerCache(root.dir, root.store, { limits });
  const err = await cache.unpackImage(image).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isMagikError(err), String(err)).toBe(true);
  const chain = chainIds(image.config.rootfs.diff_ids);
  expect(cache.get(chain[chain.length - 1]!)).toBeUndefined();
  expect(list(path.join(root.dir, "layers/tmp"))).toEqual([]);
  return err as { code: string; details: Record<string, unknown> };
}

function list(dir: string): string[] {
  return fs.existsSync(dir) ? fs.readdirSync(dir) : [];
}

const zeros = (size: number): TarEntry => ({ type: "file", path: "zeros", data: new Uint8Array(size) });

describe("limits", () => {
  it("stops at MAX_FILES_PER_LAYER entries", async () => {
    const entries = Array.from(
      { length: 11 },
      (_, i): TarEntry => ({ type: "file", path: `f${i}`, data: "" }),
    );
    const err = await failure(await storeLayers(root.store, [entries]), { MAX_FILES_PER_LAYER: 10 });
    expect(err.code).toBe("ImageTooLarge");
    expect(err.details).toMatchObject({ limit: "MAX_FILES_PER_LAYER", max: 10, value: 11 });
  });

  it("stops a gzip bomb at MAX_LAYER_SIZE, counted on the decompressed stream", async () => {
    const image = await storeLayers(root.store, [[zeros(64 * 1024 * 1024)]]);
    expect(image.manifest.layers[0]!.size).toBeLessThan(200 * 1024);
    const started = performance.now();
    const err = await failure(image, { MAX_LAYER_SIZE: 1024 * 1024 });
    expect(err.code).toBe("ImageTooLarge");
    expect(err.details.limit).toBe("MAX_LAYER_SIZE");
    expect(err.details.value as number).toBeLessThan(1024 * 1024 + 256 * 1024);
    expect(performance.now() - started).toBeLessThan(5000);
  });

  it("stops a gzip bomb crossing the default MAX_LAYER_SIZE (512 MiB) without inflating it whole", async () => {
    const size = 600 * 1024 * 1024;
    const chunk = new Uint8Array(1024 * 1024);
    const chunks = (function* () {
      for (let i = 0; i < size / chunk.length; i++) yield chunk;
    })();
    const tar = tarStream([{ type: "file", path: "bomb", data: { size, chunks } }]);
    const put = await root.store.put(compressStream(tar, "gzip"));
    const layerDescriptor = {
      mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
      digest: put.digest,
      size: put.size,
    };
    const fake = makeImage([
      { ...makeLayer(tarBytes([]), "gzip", "oci"), ...layerDescriptor, diffId: put.digest },
    ]);
    for (const blob of [fake.manifest, fake.config]) await root.store.put(blob.bytes);
    const image = await storeFixture(root.store, { ...fake, layers: [] });
    const err = await failure(image);
    expect(err.code).toBe("ImageTooLarge");
    expect(err.details).toMatchObject({ limit: "MAX_LAYER_SIZE", max: 512 * 1024 * 1024 });
  }, 60_000);

  it("stops at MAX_ROOTFS_SIZE across layers, keeping the lower layers that fit", async () => {
    const image = await storeLayers(root.store, [[zeros(600 * 1024)], [zeros(600 * 1024)]]);
    const err = await failure(image, { MAX_ROOTFS_SIZE: 1024 * 1024 });
    expect(err.code).toBe("ImageTooLarge");
    expect(err.details.limit).toBe("MAX_ROOTFS_SIZE");
    const cache = new LayerCache(root.dir, root.store);
    expect(cache.get(image.config.rootfs.diff_ids[0]!)).toBeDefined();
  });

  it("refuses more than MAX_LAYERS layers", async () => {
    const image = await storeLayers(root.store, [[zeros(1)], [zeros(2)], [zeros(3)]]);
    const err = await failure(image, { MAX_LAYERS: 2 });
    expect(err.code).toBe("ImageTooLarge");
  });
});

describe("integrity and atomicity", () => {
  it("refuses a layer whose content does not match its diff_id and keeps nothing", async () => {
    const real = makeLayer(tarBytes([{ type: "file", path: "a", data: "real" }]), "gzip", "oci");
    const other = makeLayer(tarBytes([{ type: "file", path: "a", data: "other" }]), "gzip", "oci");
    const image = await storeFixture(root.store, makeImage([{ ...real, diffId: other.diffId }]));
    const err = await failure(image);
    expect(err.code).toBe("DigestMismatch");
    expect(err.details).toMatchObject({ expected: other.diffId, actual: real.diffId });
  });

  it("a failure after many written entries leaves no partial layer", async () => {
    const good = Array.from(
      { length: 200 },
      (_, i): TarEntry => ({ type: "file", path: `d/f${i}`, data: "ok" }),
    );
    const image = await storeLayers(root.store, [[...good, { type: "file", path: "../escape", data: "x" }]]);
    const err = await failure(image);
    expect(err.code).toBe("PathTraversal");
    expect(list(path.join(root.dir, "layers/sha256"))).toEqual([]);
  });

  it("refuses a truncated archive", async () => {
    const tar = tarBytes([{ type: "file", path: "a", data: new Uint8Array(5000) }]);
    const image = await storeFixture(
      root.store,
      makeImage([makeLayer(tar.subarray(0, 2048), "gzip", "oci")]),
    );
    const err = await failure(image);
    expect(err.code).toBe("LayerExtractionFailed");
  });
});
