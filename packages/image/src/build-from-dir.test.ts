import { linkSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isMagikError, MediaTypes, sha256Digest } from "@magikrun/spec";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildFromDir } from "./build-from-dir.ts";
import { ImageStore } from "./image-store.ts";
import { hasBusybox, makeBusyboxRootfs } from "./test-support/index.ts";

describe.skipIf(!hasBusybox())("buildFromDir (needs busybox-static)", () => {
  const work = mkdtempSync(join(tmpdir(), "magikrun-build-test-"));
  const rootfs = join(work, "rootfs");
  let n = 0;
  const newStore = () => ImageStore.open(join(work, `store-${n++}`));

  beforeAll(() => {
    makeBusyboxRootfs(rootfs);
    mkdirSync(join(rootfs, "data"));
    writeFileSync(join(rootfs, "data/a.txt"), "same inode\n");
    linkSync(join(rootfs, "data/a.txt"), join(rootfs, "data/b.txt"));
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it("builds a reproducible one-layer image with the given config", async () => {
    const store = await newStore();
    const config = { Cmd: ["/bin/sh", "-c", "echo hi"], Env: ["PATH=/bin"], WorkingDir: "/", User: "0:0" };
    const built = await buildFromDir(rootfs, {
      store,
      reference: "magikrun/busybox:test",
      config,
      platform: "linux/amd64",
    });
    expect(built.record.reference).toBe("docker.io/magikrun/busybox:test");
    expect(built.image.manifest.layers[0]!.mediaType).toBe(MediaTypes.ociLayerTarGzip);
    expect(built.image.config.config).toEqual(config);

    // The diff_id is the digest of the uncompressed tar, and GNU tar reads the layer.
    const layer = await store.blobs.read(built.layerDigest);
    const tar = Bun.gunzipSync(layer as Uint8Array<ArrayBuffer>);
    expect(sha256Digest(tar)).toBe(built.diffId);
    const list = Bun.spawnSync(["tar", "-tvf", "-"], { stdin: tar, stdout: "pipe" }).stdout.toString();
    expect(list).toMatch(/-rwxr-xr-x 0\/0 .* bin\/busybox\n/);
    expect(list).toMatch(/bin\/sh -> \/bin\/busybox/);
    expect(list).toMatch(/data\/b\.txt link to data\/a\.txt/);
    expect(list).toMatch(/drwxrwxrwt 0\/0 .* tmp\//);

    const again = await buildFromDir(rootfs, {
      store: await newStore(),
      reference: "x/y:z",
      config,
      platform: "linux/amd64",
    });
    expect(again.record.manifestDigest).toBe(built.record.manifestDigest);
    expect((await store.resolve("magikrun/busybox:test")).config.rootfs.diff_ids).toEqual([built.diffId]);
  });

  it("supports uncompressed and zstd layers", async () => {
    const store = await newStore();
    const plain = await buildFromDir(rootfs, { store, reference: "t/plain", compression: "none" });
    expect(plain.layerDigest).toBe(plain.diffId);
    const zstd = await buildFromDir(rootfs, { store, reference: "t/zstd", compression: "zstd" });
    const bytes = await store.blobs.read(zstd.layerDigest);
    expect(sha256Digest(Bun.zstdDecompressSync(bytes as Uint8Array<ArrayBuffer>))).toBe(zstd.diffId);
  });

  it("refuses bad input and leaves no blob or reference", async () => {
    const store = await newStore();
    const tooMany = await buildFromDir(rootfs, {
      store,
      reference: "t/x",
      limits: { MAX_FILES_PER_LAYER: 10 },
    }).catch((e) => e);
    expect(isMagikError(tooMany, "ImageTooLarge")).toBe(true);
    expect(tooMany.details.limit).toBe("MAX_FILES_PER_LAYER");
    const tooBig = await buildFromDir(rootfs, {
      store,
      reference: "t/x",
      limits: { MAX_ROOTFS_SIZE: 1000 },
    }).catch((e) => e);
    expect(tooBig.details.limit).toBe("MAX_ROOTFS_SIZE");
    const notDir = await buildFromDir(join(rootfs, "etc/passwd"), { store, reference: "t/x" }).catch(
      (e) => e,
    );
    expect(isMagikError(notDir, "InvalidInput")).toBe(true);
    const badRef = await buildFromDir(rootfs, { store, reference: "Bad/Ref" }).catch((e) => e);
    expect(isMagikError(badRef, "InvalidImageReference")).toBe(true);
    expect(await store.blobs.list()).toEqual([]);
    expect(readdirSync(join(store.root, "blobs", "tmp"))).toEqual([]);
    expect(store.list()).toEqual([]);
  });
});
