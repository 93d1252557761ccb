import fs from "node:fs";
import path from "node:path";
import { isMagikError } from "@magikrun/spec";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { LayerCache } from "./layer-cache.ts";
import { RootfsManager } from "./rootfs.ts";
import { buildLayeredBusyboxImage, hasBusybox } from "./test-support/busybox.ts";
import type { ResolvedImage } from "./types.ts";
import {
  canMountOverlay,
  describeTree,
  makeTestRoot,
  storeFixture,
  storeLayers,
  type TestRoot,
} from "./unpack/test-image.ts";

/** Overlay tests need root and a kernel that allows the mount here; otherwise they skip (copy is still tested). */
const overlay = canMountOverlay();
let root: TestRoot;
let manager: RootfsManager;
let ids: string[];

beforeEach(async () => {
  root = await makeTestRoot("magik-rootfs-");
  manager = new RootfsManager(new LayerCache(root.dir, root.store));
  ids = [];
});
afterEach(() => {
  try {
    for (const id of ids) manager.release(id);
  } finally {
    root.cleanup(); // also unmounts whatever a failed release left mounted
  }
});

function uniqueId(name: string): string {
  const id = `${name}-${process.pid}-${ids.length}`;
  ids.push(id);
  return id;
}

async function layeredBusybox(): Promise<ResolvedImage> {
  const work = path.join(root.dir, "work");
  fs.mkdirSync(work);
  return storeFixture(root.store, buildLayeredBusyboxImage({ workDir: work }));
}

describe.skipIf(!hasBusybox())("rootfs assembly (layered busybox)", () => {
  it("overlay and copy give the same tree, with whiteouts, opaque dirs, hardlinks and symlinks applied", async () => {
    const image = await layeredBusybox();
    const copy = await manager.assemble(image, uniqueId("copy"), { forceCopy: true });
    expect(copy.mode).toBe("copy");
    const copyTree = describeTree(copy.path);
    expect(copyTree.some((line) => line.startsWith("etc/group "))).toBe(false);
    expect(copyTree.some((line) => line.startsWith("opt/old"))).toBe(false);
    expect(copyTree).toContain("opt/new.txt f 644 0:0 13 mtime=0");
    expect(copyTree.find((l) => l.startsWith("data/original.txt "))).toContain("link=data/hardlink.txt");
    expect(copyTree).toContain("data/absolute-link l 777 0:0 -> /data/original.txt mtime=0");
    expect(copyTree).toContain("bin/sh l 777 0:0 -> /bin/busybox mtime=0");
    if (!overlay) return; // no overlayfs here (not root, or refused): the copy above is what this host gets
    const merged = await manager.assemble(image, uniqueId("overlay"));
    expect(merged.mode).toBe("overlay");
    expect(describeTree(merged.path)).toEqual(copyTree);
  });

  it.skipIf(!overlay)("a second container of the image costs a mount, not an unpack", async () => {
    const image = await layeredBusybox();
    const first = await manager.assemble(image, uniqueId("first"));
    const started = performance.now();
    const second = await manager.assemble(image, uniqueId("second"));
    const elapsed = performance.now() - started;
    expect(second.mode).toBe("overlay");
    expect(second.layers).toEqual(first.layers);
    // The benchmark holds the 5 ms target; a loaded CI machine gets slack here.
    expect(elapsed).toBeLessThan(100);
  });

  it.skipIf(!overlay)(
    "writes in a container stay in its upper dir; release unmounts and removes it all",
    async () => {
      const image = await layeredBusybox();
      const id = uniqueId("rw");
      const rootfs = await manager.assemble(image, id);
      fs.writeFileSync(path.join(rootfs.path, "etc/passwd"), "changed");
      fs.rmSync(path.join(rootfs.path, "bin/busybox"));
      const cache = new LayerCache(root.dir, root.store);
      const base = cache.get(rootfs.layers[0]!)!;
      expect(fs.readFileSync(path.join(base.dir, "etc/passwd"), "utf8")).not.toBe("changed");
      expect(fs.existsSync(path.join(base.dir, "bin/busybox"))).toBe(true);
      manager.release(id);
      expect(fs.existsSync(manager.dirOf(id))).toBe(false);
      expect(fs.readFileSync("/proc/self/mountinfo", "utf8")).not.toContain(manager.dirOf(id));
      expect(fs.existsSync(path.join(base.dir, "bin/busybox"))).toBe(true);
      manager.release(id);
    },
  );
});

describe("rootfs ids", () => {
  it("refuses an id that already has a rootfs, and invalid ids", async () => {
    const image = await storeLayers(root.store, [[{ type: "file", path: "a", data: "a" }]]);
    const id = uniqueId("dup");
    await manager.assemble(image, id);
    const err = await manager.assemble(image, id).catch((e: unknown) => e);
    expect(isMagikError(err, "ContainerAlreadyExists")).toBe(true);
    const bad = await manager.assemble(image, "../escape").catch((e: unknown) => e);
    expect(isMagikError(bad, "InvalidContainerId")).toBe(true);
    expect(fs.existsSync(path.join(root.dir, "escape"))).toBe(false);
  });

  it("without privileges, copies and applies whiteouts and opaque dirs from the layer records", async () => {
    const image = await storeLayers(root.store, [
      [
        { type: "file", path: "etc/gone", data: "g" },
        { type: "file", path: "etc/kept", data: "k" },
        { type: "file", path: "opt/old", data: "o" },
      ],
      [
        { type: "file", path: "etc/.wh.gone", data: "" },
        { type: "file", path: "opt/.wh..wh..opq", data: "" },
        { type: "file", path: "opt/new", data: "n" },
      ],
    ]);
    const unprivileged = new RootfsManager(new LayerCache(root.dir, root.store, { privileged: false }));
    const id = uniqueId("unpriv");
    const rootfs = await unprivileged.assemble(image, id);
    expect(rootfs.mode).toBe("copy");
    expect(rootfs.fallbackReason).toBe("overlayfs needs root");
    expect(fs.readdirSync(path.join(rootfs.path, "etc"))).toEqual(["kept"]);
    expect(fs.readdirSync(path.join(rootfs.path, "opt"))).toEqual(["new"]);
  });

  it("assembles an image with no layers", async () => {
    const image = await storeLayers(root.store, []);
    const rootfs = await manager.assemble(image, uniqueId("empty"));
    expect(fs.readdirSync(rootfs.path)).toEqual([]);
  });
});
