import fs from "node:fs";
import path from "node:path";
import { MagikError, toMagikError, validateContainerId } from "@magikrun/spec";
import { MNT_DETACH, mount, type NativeFsError, umount2 } from "./fs-native.ts";
import type { LayerCache, UnpackedLayer } from "./layer-cache.ts";
import { copyLayers } from "./rootfs-copy.ts";
import { LAYOUT, type ResolvedImage } from "./types.ts";

/**
 * Container root filesystems assembled from cached layers: an overlayfs mount (cached layers as lowerdirs, a
 * per-container upper and work dir) when the kernel and our privileges allow, a copy otherwise. The second
 * container of an image therefore costs three mkdirs and one mount(2).
 *
 * Layout: `rootfs/<id>/{merged/,upper/,work/,rootfs.json}`; `merged` is what a bundle's root.path points at.
 */

export type RootfsMode = "overlay" | "copy";

export interface AssembledRootfs {
  id: string;
  /** Absolute path of the container's root filesystem. */
  path: string;
  mode: RootfsMode;
  /** Chain ids of the layers, bottom first. */
  layers: string[];
  /** Why overlayfs was not used, when it was not. */
  fallbackReason?: string;
}

export interface AssembleOptions {
  /** Copy even when overlayfs would work (tests, or hosts where shared lowers are unwanted). */
  forceCopy?: boolean;
}

/** Linux passes mount data in one page; a longer lowerdir list cannot be mounted this way. */
const MAX_MOUNT_DATA = 4095;

export class RootfsManager {
  readonly root: string;
  readonly #cache: LayerCache;

  constructor(cache: LayerCache) {
    this.#cache = cache;
    this.root = cache.root;
  }

  dirOf(id: string): string {
    return path.join(this.root, LAYOUT.rootfs, validateContainerId(id));
  }

  async assemble(image: ResolvedImage, id: string, options: AssembleOptions = {}): Promise<AssembledRootfs> {
    const dir = this.dirOf(id);
    const layers = await this.#cache.unpackImage(image);
    fs.mkdirSync(path.dirname(dir), { recursive: true, mode: 0o711 });
    try {
      fs.mkdirSync(dir, 0o711);
    } catch (err) {
      if ((err as { code?: string }).code === "EEXIST") {
        throw new MagikError("ContainerAlreadyExists", `a root filesystem for ${id} already exists`, {
          details: { id, path: dir },
        });
      }
      throw toMagikError(err, "StorageWriteFailed", `cannot create ${dir}`);
    }
    try {
      const merged = path.join(dir, "merged");
      fs.mkdirSync(merged, 0o755);
      const reason = options.forceCopy ? "copy requested" : this.#overlayBlocker(layers, dir);
      let mode: RootfsMode = "copy";
      let fallbackReason = reason;
      if (reason === undefined) {
        try {
          this.#mountOverlay(layers, dir, merged);
          mode = "overlay";
        } catch (err) {
          fallbackReason = `overlay mount failed: ${(err as Error).message}`;
          for (const sub of ["upper", "work", "empty"])
            fs.rmSync(path.join(dir, sub), { recursive: true, force: true });
        }
      }
      if (mode === "copy") copyLayers(layers, merged, this.#cache.privileged);
      const result: AssembledRootfs = { id, path: merged, mode, layers: layers.map((l) => l.meta.chainId) };
      if (fallbackReason !== undefined && mode === "copy") result.fallbackReason = fallbackReason;
      fs.writeFileSync(path.join(dir, "rootfs.json"), JSON.stringify(result));
      return result;
    } catch (err) {
      this.#remove(id, dir);
      throw toMagikError(err, "BundleBuildFailed", `cannot assemble the root filesystem of ${id}`);
    }
  }

  #overlayBlocker(layers: UnpackedLayer[], dir: string): string | undefined {
    if (!this.#cache.privileged) return "overlayfs needs root";
    const notReady = layers.find((l) => !l.meta.overlayReady);
    if (notReady) return `layer ${notReady.meta.diffId} has whiteouts not in overlayfs form`;
    if (/[:,\\]/.test(dir) || layers.some((l) => /[:,\\]/.test(l.dir))) return "a path holds ':' ',' or '\\'";
    return undefined;
  }

  #mountOverlay(layers: UnpackedLayer[], dir: string, merged: string): void {
    const upper = path.join(dir, "upper");
    const work = path.join(dir, "work");
    fs.mkdirSync(upper, 0o755);
    fs.mkdirSync(work, 0o700);
    const lowers = layers.map((l) => l.dir).reverse();
    if (lowers.length === 0) {
      fs.mkdirSync(path.join(dir, "empty"), 0o755);
      lowers.push(path.join(dir, "empty"));
    }
    const data = `lowerdir=${lowers.join(":")},upperdir=${upper},workdir=${work}`;
    if (data.length > MAX_MOUNT_DATA) throw new Error(`mount options are ${data.length} bytes`);
    mount("overlay", merged, "overlay", 0, data);
  }

  /** What `assemble` recorded for `id`, or undefined. */
  info(id: string): AssembledRootfs | undefined {
    try {
      return JSON.parse(fs.readFileSync(path.join(this.dirOf(id), "rootfs.json"), "utf8")) as AssembledRootfs;
    } catch {
      return undefined;
    }
  }

  /** Unmounts (if mounted) and removes a container's root filesystem. Idempotent. */
  release(id: string): void {
    const dir = this.dirOf(id);
    if (!fs.existsSync(dir)) return;
    this.#remove(id, dir);
  }

  #remove(id: string, dir: string): void {
    const merged = path.join(dir, "merged");
    try {
      umount2(merged, 0);
    } catch (err) {
      const code = (err as NativeFsError).code;
      if (code === "EBUSY") umount2(merged, MNT_DETACH);
      else if (code !== "EINVAL" && code !== "ENOENT") {
        throw toMagikError(err, "DeleteFailed", `cannot unmount the root filesystem of ${id}`);
      }
    }
    if (isMountPoint(merged)) {
      throw new MagikError("DeleteFailed", `${merged} is still mounted; not removing it`, {
        details: { id, path: merged },
      });
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function isMountPoint(p: string): boolean {
  try {
    return fs.statSync(p).dev !== fs.statSync(path.dirname(p)).dev;
  } catch {
    return false;
  }
}
