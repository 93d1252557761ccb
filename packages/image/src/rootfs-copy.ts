import fs from "node:fs";
import path from "node:path";
import { lgetxattr, llistxattr, lsetxattr, mknodat, O_CLOEXEC, O_PATH } from "./fs-native.ts";
import type { UnpackedLayer } from "./layer-cache.ts";
import { fdPath } from "./resolve-in-root.ts";

const { O_DIRECTORY, O_NOFOLLOW } = fs.constants;

/**
 * The fallback when overlayfs is not available: applies cached layers in order onto one directory with overlayfs
 * semantics (an upper directory merges with a lower directory; anything else replaces what is below; whiteouts
 * remove; opaque directories drop what was below). Only the target is written, which only we write to, and an
 * existing non-directory is always removed before anything is created in its place, so no write follows a symlink.
 */
export function copyLayers(layers: UnpackedLayer[], target: string, privileged: boolean): void {
  for (const layer of layers) {
    const whiteouts = new Set(layer.meta.whiteouts);
    const opaques = new Set(layer.meta.opaques);
    if (opaques.has("")) clearDir(target);
    // Unprivileged unpacks record whiteouts without a marker file in the layer: apply them from the record.
    for (const rel of whiteouts) {
      if (hasRealParents(target, rel)) fs.rmSync(path.join(target, rel), { recursive: true, force: true });
    }
    const links = new Map<string, string>();
    copyTree(layer.dir, target, "", { whiteouts, opaques, links, privileged });
  }
}

interface CopyContext {
  whiteouts: Set<string>;
  opaques: Set<string>;
  /** dev:ino of a file already copied in this layer → its target path, to keep hardlinks. */
  links: Map<string, string>;
  privileged: boolean;
}

/** Whether every parent of `rel` in `root` is a real directory (so a path operation cannot follow a symlink). */
function hasRealParents(root: string, rel: string): boolean {
  const parts = rel.split("/");
  for (let i = 1; i < parts.length; i++) {
    const stat = fs.lstatSync(path.join(root, ...parts.slice(0, i)), { throwIfNoEntry: false });
    if (!stat?.isDirectory()) return false;
  }
  return true;
}

function clearDir(dir: string): void {
  for (const name of fs.readdirSync(dir)) fs.rmSync(path.join(dir, name), { recursive: true, force: true });
}

function lstatOrUndefined(p: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(p);
  } catch {
    return undefined;
  }
}

function copyTree(srcRoot: string, dstRoot: string, rel: string, ctx: CopyContext): void {
  const srcDir = path.join(srcRoot, rel);
  for (const name of fs.readdirSync(srcDir)) {
    const childRel = rel === "" ? name : `${rel}/${name}`;
    const src = path.join(srcRoot, childRel);
    const dst = path.join(dstRoot, childRel);
    const stat = fs.lstatSync(src);
    const existing = lstatOrUndefined(dst);
    if (ctx.whiteouts.has(childRel)) {
      if (existing) fs.rmSync(dst, { recursive: true, force: true });
      continue;
    }
    if (stat.isDirectory()) {
      if (existing && (!existing.isDirectory() || ctx.opaques.has(childRel))) {
        fs.rmSync(dst, { recursive: true, force: true });
      }
      if (!existing?.isDirectory() || ctx.opaques.has(childRel)) fs.mkdirSync(dst, 0o700);
      copyTree(srcRoot, dstRoot, childRel, ctx);
      copyMetadata(src, dst, stat, ctx.privileged);
      continue;
    }
    if (existing) fs.rmSync(dst, { recursive: true, force: true });
    const key = `${stat.dev}:${stat.ino}`;
    const linked = stat.nlink > 1 ? ctx.links.get(key) : undefined;
    if (linked !== undefined) {
      fs.linkSync(linked, dst);
      continue;
    }
    if (stat.isSymbolicLink()) {
      fs.symlinkSync(fs.readlinkSync(src), dst);
    } else if (stat.isFile()) {
      fs.copyFileSync(src, dst, fs.constants.COPYFILE_EXCL);
    } else {
      const parentFd = fs.openSync(path.dirname(dst), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      try {
        const { major, minor } = splitDev(stat.rdev);
        mknodat(parentFd, path.basename(dst), stat.mode, major, minor);
      } finally {
        fs.closeSync(parentFd);
      }
    }
    if (stat.nlink > 1) ctx.links.set(key, dst);
    copyMetadata(src, dst, stat, ctx.privileged);
  }
}

/** glibc's dev_t encoding (gnu_dev_major/minor). */
function splitDev(rdev: number): { major: number; minor: number } {
  const dev = BigInt(rdev);
  return {
    major: Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn)),
    minor: Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn)),
  };
}

function copyMetadata(src: string, dst: string, stat: fs.Stats, privileged: boolean): void {
  if (stat.isSymbolicLink()) {
    if (privileged) fs.lchownSync(dst, stat.uid, stat.gid);
    copyXattrs(src, dst);
    fs.lutimesSync(dst, stat.mtime, stat.mtime);
    return;
  }
  const fd = fs.openSync(dst, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  try {
    if (privileged) fs.chownSync(fdPath(fd), stat.uid, stat.gid);
    fs.chmodSync(fdPath(fd), stat.mode & 0o7777);
    copyXattrs(src, dst);
    fs.utimesSync(fdPath(fd), stat.mtime, stat.mtime);
  } finally {
    fs.closeSync(fd);
  }
}

function copyXattrs(src: string, dst: string): void {
  for (const name of llistxattr(src)) {
    if (name.startsWith("trusted.overlay.")) continue;
    const value = lgetxattr(src, name);
    if (value !== undefined) {
      try {
        lsetxattr(dst, name, value);
      } catch {
        // Not every xattr namespace can be set on every file type (user.* on symlinks); the layer keeps it.
      }
    }
  }
}
