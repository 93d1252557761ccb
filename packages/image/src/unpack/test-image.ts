import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ImageConfig, ImageManifest } from "@magikrun/spec";
import { BlobStore } from "@magikrun/storage";
import { lsetxattr, mknodat, O_CLOEXEC, O_PATH } from "../fs-native.ts";
import { type TarEntry, tarBytes } from "../tar-writer.ts";
import {
  type FixtureImage,
  type LayerCompressionKind,
  makeImage,
  makeLayer,
} from "../test-support/fixture.ts";
import type { ResolvedImage } from "../types.ts";
import { OPAQUE_XATTR } from "./upper-tree.ts";

/** Test helpers for the unpack side: a unique temp root with a real BlobStore, and images put into it. */

export interface TestRoot {
  dir: string;
  store: BlobStore;
  cleanup(): void;
}

export async function makeTestRoot(prefix = "magik-unpack-"): Promise<TestRoot> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const store = await BlobStore.open(dir);
  return {
    dir,
    store,
    cleanup: () => {
      unmountBelow(dir);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Unmounts anything a failed test left mounted below `dir` (deepest first), so removal cannot reach lowers. */
export function unmountBelow(dir: string): void {
  const mounts = fs
    .readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((line) => line.split(" ")[4] ?? "")
    .filter((mountPoint) => mountPoint.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
  for (const mountPoint of mounts) Bun.spawnSync(["umount", "-l", mountPoint]);
}

/** Puts a fixture image's blobs in the store and returns it as the pull side would hand it over. */
export async function storeFixture(store: BlobStore, fixture: FixtureImage): Promise<ResolvedImage> {
  for (const blob of [fixture.manifest, fixture.config, ...fixture.layers]) {
    await store.put(blob.bytes, { digest: blob.digest });
  }
  const decode = (bytes: Uint8Array) => JSON.parse(new TextDecoder().decode(bytes));
  return {
    manifestDigest: fixture.manifest.digest,
    manifest: ImageManifest.parse(decode(fixture.manifest.bytes)),
    configDigest: fixture.config.digest,
    config: ImageConfig.parse(decode(fixture.config.bytes)),
  };
}

/** An image whose layers are the given entry lists (bottom first). */
export async function storeLayers(
  store: BlobStore,
  layers: TarEntry[][],
  options: { compression?: LayerCompressionKind; config?: Record<string, unknown> } = {},
): Promise<ResolvedImage> {
  const built = layers.map((entries) => makeLayer(tarBytes(entries), options.compression ?? "gzip", "oci"));
  return storeFixture(store, makeImage(built, options.config ? { config: options.config } : {}));
}

/**
 * A tree as comparable lines: path, type, mode, owner, size, mtime, link target, device, and which paths share an
 * inode (hardlinks). The root itself is left out (its attributes belong to whoever made the directory).
 */
export function describeTree(dir: string, options: { mtimes?: boolean } = {}): string[] {
  const lines: string[] = [];
  const inodes = new Map<number, string>();
  const walk = (rel: string) => {
    for (const name of fs.readdirSync(path.join(dir, rel)).sort()) {
      const childRel = rel === "" ? name : `${rel}/${name}`;
      const stat = fs.lstatSync(path.join(dir, childRel));
      const type = stat.isDirectory()
        ? "d"
        : stat.isSymbolicLink()
          ? "l"
          : stat.isFile()
            ? "f"
            : stat.isCharacterDevice()
              ? "c"
              : stat.isBlockDevice()
                ? "b"
                : "p";
      const fields = [childRel, type, (stat.mode & 0o7777).toString(8), `${stat.uid}:${stat.gid}`];
      if (type === "f") fields.push(String(stat.size));
      if (type === "l") fields.push(`-> ${fs.readlinkSync(path.join(dir, childRel))}`);
      if (type === "c" || type === "b") fields.push(`rdev=${stat.rdev}`);
      if (options.mtimes !== false && type !== "d") fields.push(`mtime=${Math.floor(stat.mtimeMs / 1000)}`);
      if (type === "f" && stat.nlink > 1) {
        const first = inodes.get(stat.ino);
        if (first === undefined) inodes.set(stat.ino, childRel);
        else fields.push(`link=${first}`);
      }
      lines.push(fields.join(" "));
      if (type === "d") walk(childRel);
    }
  };
  walk("");
  return lines;
}

let overlayProbe: boolean | undefined;

/**
 * Whether layers unpacked under the temp dir can be stacked with overlayfs here: root, overlay whiteouts (a 0/0
 * char device and the trusted.overlay.opaque xattr) accepted by the filesystem, and the mount allowed. Probed once.
 */
export function canMountOverlay(): boolean {
  if (overlayProbe !== undefined) return overlayProbe;
  overlayProbe = false;
  if (process.getuid?.() !== 0) return overlayProbe;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "magik-overlay-probe-"));
  try {
    for (const sub of ["lower", "upper", "work", "merged"]) fs.mkdirSync(path.join(dir, sub));
    try {
      lsetxattr(path.join(dir, "lower"), OPAQUE_XATTR, new TextEncoder().encode("y"));
      const fd = fs.openSync(path.join(dir, "lower"), O_PATH | O_CLOEXEC);
      try {
        mknodat(fd, "whiteout", fs.constants.S_IFCHR, 0, 0);
      } finally {
        fs.closeSync(fd);
      }
    } catch {
      return overlayProbe;
    }
    const options = `lowerdir=${dir}/lower,upperdir=${dir}/upper,workdir=${dir}/work`;
    const mounted = Bun.spawnSync(["mount", "-t", "overlay", "overlay", "-o", options, `${dir}/merged`]);
    overlayProbe = mounted.exitCode === 0;
    if (overlayProbe) Bun.spawnSync(["umount", `${dir}/merged`]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return overlayProbe;
}
