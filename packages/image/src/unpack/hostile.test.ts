import fs from "node:fs";
import path from "node:path";
import { isMagikError, type MagikErrorCode } from "@magikrun/spec";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { lgetxattr, setOpenat2Available } from "../fs-native.ts";
import { LayerCache } from "../layer-cache.ts";
import { type TarEntry, tarBytes } from "../tar-writer.ts";
import { makeImage, makeLayer } from "../test-support/fixture.ts";
import type { ResolvedImage } from "../types.ts";
import { canMountOverlay, makeTestRoot, storeFixture, storeLayers, type TestRoot } from "./test-image.ts";

/**
 * One test per extraction rule, each on a hostile layer generated here. Every refusal must leave nothing behind:
 * no cached layer, no temp directory. Every neutralised write must land inside the image root, never outside.
 */

let root: TestRoot;
let outside: string;

beforeEach(async () => {
  root = await makeTestRoot();
  outside = path.join(root.dir, "outside");
  fs.mkdirSync(outside);
  fs.writeFileSync(path.join(outside, "keep"), "host file");
});
afterEach(() => {
  setOpenat2Available(undefined);
  root.cleanup();
});

function cache(limits: Record<string, number> = {}): LayerCache {
  return new LayerCache(root.dir, root.store, { limits });
}

async function expectRefused(image: ResolvedImage, code: MagikErrorCode, c = cache()): Promise<unknown> {
  const err = await c.unpackImage(image).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isMagikError(err), String(err)).toBe(true);
  expect((err as { code: string }).code).toBe(code);
  const top = image.config.rootfs.diff_ids.length - 1;
  expect(c.get(chainOf(image, top))).toBeUndefined();
  expect(fs.readdirSync(path.join(root.dir, "layers/tmp"))).toEqual([]);
  expect(fs.readdirSync(outside)).toEqual(["keep"]);
  return err;
}

function chainOf(image: ResolvedImage, index: number): string {
  let chain = image.config.rootfs.diff_ids[0]!;
  for (const diffId of image.config.rootfs.diff_ids.slice(1, index + 1)) {
    const hasher = new Bun.CryptoHasher("sha256");
    hasher.update(`${chain} ${diffId}`);
    chain = `sha256:${hasher.digest("hex")}`;
  }
  return chain;
}

async function unpackTop(layers: TarEntry[][]): Promise<string> {
  const image = await storeLayers(root.store, layers);
  const unpacked = await cache().unpackImage(image);
  expect(fs.readdirSync(outside)).toEqual(["keep"]);
  return unpacked[unpacked.length - 1]!.dir;
}

const file = (p: string, data = "x"): TarEntry => ({ type: "file", path: p, data });

describe("paths", () => {
  it("refuses '..' in an entry name", async () => {
    const image = await storeLayers(root.store, [[file("ok"), file("a/../../escape")]]);
    const err = await expectRefused(image, "PathTraversal");
    expect((err as { details: unknown }).details).toEqual({ path: "a/../../escape" });
  });

  it("makes absolute entry names relative to the layer root, with a warning", async () => {
    const image = await storeLayers(root.store, [[file(`${outside}/abs`, "in")]]);
    const [layer] = await cache().unpackImage(image);
    expect(fs.readFileSync(path.join(layer!.dir, outside, "abs"), "utf8")).toBe("in");
    expect(layer!.meta.warnings[0]).toContain("absolute path");
    expect(fs.readdirSync(outside)).toEqual(["keep"]);
  });

  it("refuses NUL bytes in a PAX path, a PAX linkpath and a GNU long name", async () => {
    const pax = await storeLayers(root.store, [[{ type: "file", path: "a", pax: { path: "a\0/../../x" } }]]);
    expect(String(await expectRefused(pax, "LayerExtractionFailed"))).toContain("NUL byte in tar PAX path");
    const link = await storeLayers(root.store, [
      [{ type: "symlink", path: "l", target: "t", pax: { linkpath: "t\0x" } }],
    ]);
    expect(String(await expectRefused(link, "LayerExtractionFailed"))).toContain("PAX linkpath");
    // No slash, so the writer must use a GNU long-name record; the NUL would hide the rest of the name.
    const longName = `${"n".repeat(150)}\0${"m".repeat(150)}`;
    const tar = tarBytes([file(longName)], { longNames: "gnu" });
    expect(new TextDecoder("latin1").decode(tar)).toContain("././@LongLink");
    const gnuImage = await storeFixture(root.store, makeImage([makeLayer(tar, "gzip", "oci")]));
    expect(String(await expectRefused(gnuImage, "LayerExtractionFailed"))).toContain("NUL byte");
  });

  it("refuses names over NAME_MAX and PATH_MAX", async () => {
    const component = await storeLayers(root.store, [[file(`d/${"c".repeat(256)}`)]]);
    expect(String(await expectRefused(component, "LayerExtractionFailed"))).toContain("over 255 bytes");
    const long = await storeLayers(root.store, [[file(Array(50).fill("p".repeat(90)).join("/"))]]);
    expect(String(await expectRefused(long, "LayerExtractionFailed"))).toContain("over 4096");
  });
});

describe("symlinks", () => {
  it("writes through an absolute symlink made in the same layer land inside the root", async () => {
    const dir = await unpackTop([
      [{ type: "symlink", path: "esc", target: outside }, file("esc/pwned", "p")],
    ]);
    expect(fs.readlinkSync(path.join(dir, "esc"))).toBe(outside);
    expect(fs.readFileSync(path.join(dir, outside, "pwned"), "utf8")).toBe("p");
  });

  it("writes through a relative symlink climbing above the root stay inside", async () => {
    const dir = await unpackTop([
      [{ type: "symlink", path: "a/up", target: "../../../../../../../../.." }, file(`a/up${outside}/pwned`)],
    ]);
    expect(fs.existsSync(path.join(dir, outside, "pwned"))).toBe(true);
  });

  it("writes through a symlink made by an earlier layer resolve against the image, not the host", async () => {
    const dir = await unpackTop([
      [{ type: "symlink", path: "usr/esc", target: outside }],
      [file("usr/esc/pwned", "p"), { type: "symlink", path: "lib", target: "usr/lib" }],
    ]);
    expect(fs.readFileSync(path.join(dir, outside, "pwned"), "utf8")).toBe("p");
  });

  it("follows a lower layer's symlink the way the merged tree would (lib -> usr/lib)", async () => {
    const dir = await unpackTop([
      [
        { type: "dir", path: "usr/lib" },
        { type: "symlink", path: "lib", target: "usr/lib" },
      ],
      [file("lib/libc.so", "c")],
    ]);
    expect(fs.readFileSync(path.join(dir, "usr/lib/libc.so"), "utf8")).toBe("c");
    expect(fs.existsSync(path.join(dir, "lib"))).toBe(false);
  });

  it("refuses symlink chains longer than 40 and loops", async () => {
    const chain: TarEntry[] = Array.from({ length: 42 }, (_, i) => ({
      type: "symlink",
      path: `s${i}`,
      target: `s${i + 1}`,
    }));
    const long = await storeLayers(root.store, [[...chain, { type: "dir", path: "s42" }, file("s0/x")]]);
    expect(String(await expectRefused(long, "PathTraversal"))).toContain("more than 40 symlinks");
    const loop = await storeLayers(root.store, [
      [
        { type: "symlink", path: "a", target: "b" },
        { type: "symlink", path: "b", target: "/a" },
        file("a/x"),
      ],
    ]);
    await expectRefused(loop, "PathTraversal");
  });

  it("a later entry replaces a directory (and its content) with a file", async () => {
    const dir = await unpackTop([
      [{ type: "dir", path: "d", mtime: 5 }, file("d/x"), file("d", "now a file")],
    ]);
    expect(fs.readFileSync(path.join(dir, "d"), "utf8")).toBe("now a file");
  });

  it("replacing a file with a symlink, then writing the name again, never writes through the symlink", async () => {
    const dir = await unpackTop([
      [file("x", "first"), { type: "symlink", path: "x", target: `${outside}/target` }, file("x", "second")],
    ]);
    expect(fs.lstatSync(path.join(dir, "x")).isFile()).toBe(true);
    expect(fs.readFileSync(path.join(dir, "x"), "utf8")).toBe("second");
  });
});

describe("without openat2 (component-wise O_NOFOLLOW walk)", () => {
  it("keeps the same guarantees", async () => {
    setOpenat2Available(false);
    const dir = await unpackTop([
      [
        { type: "symlink", path: "usr/esc", target: outside },
        { type: "symlink", path: "up", target: "../../.." },
      ],
      [
        file("usr/esc/pwned"),
        file(`up${outside}/also`),
        file("x"),
        { type: "symlink", path: "x", target: outside },
        file("x"),
      ],
    ]);
    expect(fs.existsSync(path.join(dir, outside, "pwned"))).toBe(true);
    expect(fs.existsSync(path.join(dir, outside, "also"))).toBe(true);
    expect(fs.lstatSync(path.join(dir, "x")).isFile()).toBe(true);
  });
});

describe("hardlinks", () => {
  it("refuses a hardlink target with '..'", async () => {
    const image = await storeLayers(root.store, [
      [{ type: "hardlink", path: "h", target: "../../outside/keep" }],
    ]);
    await expectRefused(image, "PathTraversal");
  });

  it("refuses a hardlink to a target that does not exist", async () => {
    const image = await storeLayers(root.store, [[{ type: "hardlink", path: "h", target: "missing" }]]);
    expect(String(await expectRefused(image, "LayerExtractionFailed"))).toContain("does not exist");
  });

  it("resolves a hardlink through an escaping symlink inside the image, never to the host file", async () => {
    const links = fs.statSync(path.join(outside, "keep")).nlink;
    const image = await storeLayers(root.store, [
      [
        { type: "symlink", path: "esc", target: outside },
        { type: "hardlink", path: "h", target: "esc/keep" },
      ],
    ]);
    await expectRefused(image, "LayerExtractionFailed");
    expect(fs.statSync(path.join(outside, "keep")).nlink).toBe(links);
  });

  it("links to a lower layer's file by copying it up first", async () => {
    const dir = await unpackTop([
      [file("etc/a", "A")],
      [{ type: "hardlink", path: "etc/b", target: "etc/a" }],
    ]);
    expect(fs.statSync(path.join(dir, "etc/b")).ino).toBe(fs.statSync(path.join(dir, "etc/a")).ino);
    expect(fs.readFileSync(path.join(dir, "etc/b"), "utf8")).toBe("A");
  });
});

describe("overlayfs markers from the layer", () => {
  it("refuses trusted.overlay.* xattrs in entries, so a layer cannot forge opaque dirs or redirects", async () => {
    const image = await storeLayers(root.store, [
      [
        {
          type: "dir",
          path: "d",
          xattrs: { "trusted.overlay.opaque": "y", "trusted.overlay.redirect": "/etc" },
        },
      ],
    ]);
    const [layer] = await cache().unpackImage(image);
    expect(lgetxattr(path.join(layer!.dir, "d"), "trusted.overlay.opaque")).toBeUndefined();
    expect(lgetxattr(path.join(layer!.dir, "d"), "trusted.overlay.redirect")).toBeUndefined();
    expect(layer!.meta.warnings).toEqual([
      "d: overlayfs xattr trusted.overlay.opaque refused",
      "d: overlayfs xattr trusted.overlay.redirect refused",
    ]);
    expect(layer!.meta.opaques).toEqual([]);
  });
});

describe("whiteouts", () => {
  it("refuses a whiteout whose parent path is a symlink", async () => {
    const image = await storeLayers(root.store, [
      [{ type: "symlink", path: "d", target: outside }],
      [file("d/.wh.keep", "")],
    ]);
    await expectRefused(image, "PathTraversal");
    expect(fs.existsSync(path.join(outside, "keep"))).toBe(true);
  });

  it("records whiteouts and opaque dirs in overlay form inside the layer", async () => {
    const image = await storeLayers(root.store, [
      [file("etc/gone"), file("opt/old")],
      [file("etc/.wh.gone", ""), file("opt/.wh..wh..opq", ""), file("opt/new")],
    ]);
    const [, top] = await cache().unpackImage(image);
    expect(top!.meta.whiteouts).toEqual(["etc/gone"]);
    expect(top!.meta.opaques).toEqual(["opt"]);
    if (canMountOverlay()) {
      const stat = fs.lstatSync(path.join(top!.dir, "etc/gone"));
      expect(stat.isCharacterDevice() && stat.rdev === 0).toBe(true);
      expect(top!.meta.overlayReady).toBe(true);
    }
  });
});
