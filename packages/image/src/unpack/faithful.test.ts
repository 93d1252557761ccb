import fs from "node:fs";
import path from "node:path";
import { MediaTypes } from "@magikrun/spec";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { lgetxattr } from "../fs-native.ts";
import { LayerCache } from "../layer-cache.ts";
import { type TarEntry, tarBytes } from "../tar-writer.ts";
import { makeImage, makeLayer } from "../test-support/fixture.ts";
import { describeTree, makeTestRoot, storeFixture, type TestRoot } from "./test-image.ts";

let root: TestRoot;
beforeEach(async () => {
  root = await makeTestRoot();
});
afterEach(() => root.cleanup());

const isRoot = process.getuid?.() === 0;
/** VFS_CAP_REVISION_2 with CAP_NET_RAW permitted and effective: what `setcap cap_net_raw+ep` writes. */
const NET_RAW_CAPABILITY = new Uint8Array([1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);

const entries: TarEntry[] = [
  { type: "dir", path: "tmp", mode: 0o1777, mtime: 1_000_000_000 },
  { type: "dir", path: "srv", mode: 0o2755, uid: 1000, gid: 1000, mtime: 1_000_000_001 },
  { type: "file", path: "bin/su", data: "su", mode: 0o4755, mtime: 1_234_567_890 },
  { type: "file", path: "bin/wall", data: "w", mode: 0o2755, gid: 5 },
  { type: "file", path: "srv/secret", data: "s", mode: 0o640, uid: 1000, gid: 1000, mtime: 42 },
  { type: "symlink", path: "bin/sh", target: "/bin/busybox", mtime: 7 },
  { type: "symlink", path: "bin/rel", target: "../srv/secret" },
  { type: "hardlink", path: "bin/su-again", target: "bin/su" },
  {
    type: "file",
    path: "bin/ping",
    data: "p",
    mode: 0o755,
    xattrs: { "security.capability": NET_RAW_CAPABILITY },
  },
  { type: "file", path: "user-xattr", data: "u", xattrs: { "user.origin": "layer" } },
  { type: "char", path: "dev/null", major: 1, minor: 3, mode: 0o666 },
  { type: "block", path: "dev/loop7", major: 7, minor: 7, mode: 0o660, gid: 6 },
  { type: "fifo", path: "run/initctl", mode: 0o600 },
];

async function unpackWith(
  compression: "none" | "gzip" | "zstd",
  format: "oci" | "docker" = "oci",
  into = root,
) {
  const layer = makeLayer(tarBytes(entries), compression, format);
  const image = await storeFixture(into.store, makeImage([layer], {}, format));
  const [unpacked] = await new LayerCache(into.dir, into.store).unpackImage(image);
  return { layer, unpacked: unpacked! };
}

describe("faithful unpacking", () => {
  it.skipIf(!isRoot)(
    "keeps modes (setuid, setgid, sticky), owners, mtimes, symlink targets, hardlinks, devices",
    async () => {
      const { unpacked } = await unpackWith("gzip");
      const tree = describeTree(unpacked.dir);
      expect(tree).toContain("tmp d 1777 0:0");
      expect(tree).toContain("srv d 2755 1000:1000");
      expect(tree).toContain("bin/su f 4755 0:0 2 mtime=1234567890");
      expect(tree).toContain("bin/wall f 2755 0:5 1 mtime=0");
      expect(tree).toContain("srv/secret f 640 1000:1000 1 mtime=42");
      expect(tree).toContain("bin/sh l 777 0:0 -> /bin/busybox mtime=7");
      expect(tree).toContain("bin/rel l 777 0:0 -> ../srv/secret mtime=0");
      expect(tree).toContain("bin/su-again f 4755 0:0 2 mtime=1234567890 link=bin/su");
      expect(tree).toContain("dev/null c 666 0:0 rdev=259 mtime=0");
      expect(tree).toContain("dev/loop7 b 660 0:6 rdev=1799 mtime=0");
      expect(tree).toContain("run/initctl p 600 0:0 mtime=0");
      expect(Math.floor(fs.statSync(path.join(unpacked.dir, "tmp")).mtimeMs / 1000)).toBe(1_000_000_000);
      expect(lgetxattr(path.join(unpacked.dir, "bin/ping"), "security.capability")).toEqual(
        NET_RAW_CAPABILITY,
      );
      expect(new TextDecoder().decode(lgetxattr(path.join(unpacked.dir, "user-xattr"), "user.origin"))).toBe(
        "layer",
      );
      expect(unpacked.meta.warnings).toEqual([]);
    },
  );

  it("without privileges, skips devices, fifos and ownership with recorded warnings, and whiteouts stay records", async () => {
    const layer = makeLayer(tarBytes([...entries, { type: "file", path: ".wh.gone" }]), "gzip", "oci");
    const image = await storeFixture(root.store, makeImage([layer]));
    const [unpacked] = await new LayerCache(root.dir, root.store, { privileged: false }).unpackImage(image);
    expect(fs.existsSync(path.join(unpacked!.dir, "dev/null"))).toBe(false);
    expect(fs.existsSync(path.join(unpacked!.dir, "gone"))).toBe(false);
    const warnings = unpacked!.meta.warnings.join("\n");
    expect(warnings).toContain("dev/null: char skipped (not running as root)");
    expect(warnings).toContain("run/initctl: fifo skipped");
    expect(warnings).toContain("srv/secret: ownership 1000:1000 not kept");
    expect(unpacked!.meta.whiteouts).toEqual(["gone"]);
    expect(unpacked!.meta.overlayReady).toBe(false);
  });

  it("unpacks tar, tar+gzip, tar+zstd and Docker rootfs.diff.tar.gzip layers to the same tree", async () => {
    const trees: string[][] = [];
    for (const [compression, format] of [
      ["none", "oci"],
      ["gzip", "oci"],
      ["zstd", "oci"],
      ["gzip", "docker"],
    ] as const) {
      // A root per format: the cache would otherwise (rightly) reuse the first unpack.
      const own = await makeTestRoot();
      try {
        const { layer, unpacked } = await unpackWith(compression, format, own);
        if (format === "docker") expect(layer.mediaType).toBe(MediaTypes.dockerLayerTarGzip);
        if (compression === "zstd") expect(layer.mediaType).toBe(MediaTypes.ociLayerTarZstd);
        trees.push(describeTree(unpacked.dir));
      } finally {
        own.cleanup();
      }
    }
    expect(trees[0]!.length).toBeGreaterThan(10);
    for (const tree of trees.slice(1)) expect(tree).toEqual(trees[0]);
  });

  it.skipIf(!isRoot)(
    "gives directories a layer creates implicitly the attributes of the lower one (as copy-up)",
    async () => {
      const lower = makeLayer(
        tarBytes([{ type: "dir", path: "srv", mode: 0o2750, uid: 1000, gid: 1000 }]),
        "gzip",
        "oci",
      );
      const upper = makeLayer(tarBytes([{ type: "file", path: "srv/new", data: "n" }]), "gzip", "oci");
      const image = await storeFixture(root.store, makeImage([lower, upper]));
      const [, top] = await new LayerCache(root.dir, root.store).unpackImage(image);
      const stat = fs.statSync(path.join(top!.dir, "srv"));
      expect([(stat.mode & 0o7777).toString(8), stat.uid, stat.gid]).toEqual(["2750", 1000, 1000]);
    },
  );

  it("unpacks each layer once: a second image sharing it reuses the cache", async () => {
    const { unpacked } = await unpackWith("gzip");
    const marker = path.join(unpacked.dir, "bin/su");
    const ino = fs.statSync(marker).ino;
    const again = await new LayerCache(root.dir, root.store).unpackImage(
      await storeFixture(root.store, makeImage([makeLayer(tarBytes(entries), "zstd", "oci")])),
    );
    expect(again[0]!.dir).toBe(unpacked.dir);
    expect(fs.statSync(marker).ino).toBe(ino);
  });
});
