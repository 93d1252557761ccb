import fs from "node:fs";
import { MagikError } from "@magikrun/spec";
import {
  hasOpenat2,
  O_CLOEXEC,
  O_PATH,
  openat2,
  RESOLVE_IN_ROOT,
  RESOLVE_NO_MAGICLINKS,
  RESOLVE_NO_SYMLINKS,
} from "./fs-native.ts";

/**
 * Opens a path *inside* a root directory, race-free: every component is resolved relative to the root's fd, so
 * neither `..` nor a symlink (absolute or relative, planted before or during the walk) can leave the root.
 *
 * - "in-root" follows symlinks as if the root were `/` (chroot semantics, RESOLVE_IN_ROOT).
 * - "no-symlinks" refuses any symlink on the way (RESOLVE_NO_SYMLINKS): for paths that must be real directories.
 *
 * With openat2 (Linux 5.6+) the kernel does the walk. Otherwise each component is opened with O_PATH|O_NOFOLLOW
 * through /proc/self/fd/<parent fd>, so each step is anchored on an fd, never on a path string.
 */

export type SymlinkPolicy = "in-root" | "no-symlinks";

/** Linux's limit on symlinks followed in one resolution (MAXSYMLINKS). */
export const MAX_SYMLINK_FOLLOWS = 40;

const { O_NOFOLLOW, O_DIRECTORY } = fs.constants;

/** Path of an entry named `name` in the directory open as `dirFd`; the final component is not followed by lstat, mkdir, symlink, unlink, or open with O_NOFOLLOW. */
export function fdPath(dirFd: number, name?: string): string {
  return name === undefined ? `/proc/self/fd/${dirFd}` : `/proc/self/fd/${dirFd}/${name}`;
}

function errnoError(code: string, path: string): Error {
  return Object.assign(new Error(`${code}: ${path}`), { code });
}

/**
 * Opens `relPath` inside `rootFd` with `flags` (O_PATH is typical). With "in-root" the final component is followed
 * unless `flags` has O_NOFOLLOW. Throws errors with node-style `code` (ENOENT, ELOOP, ENOTDIR...).
 */
export function openInRoot(rootFd: number, relPath: string, flags: number, policy: SymlinkPolicy): number {
  if (relPath.includes("\0")) throw errnoError("EINVAL", relPath);
  if (hasOpenat2()) {
    const resolve =
      policy === "in-root"
        ? RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS
        : RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS;
    return openat2(rootFd, relPath === "" ? "." : relPath, flags | O_CLOEXEC, resolve);
  }
  return walkInRoot(rootFd, relPath, flags | O_CLOEXEC, policy);
}

function components(path: string): string[] {
  return path.split("/").filter((part) => part !== "" && part !== ".");
}

/** The portable walk: a stack of O_PATH fds, `..` pops (never above the root), symlinks are spliced in. */
export function walkInRoot(rootFd: number, relPath: string, flags: number, policy: SymlinkPolicy): number {
  const stack: number[] = [];
  const top = () => stack[stack.length - 1] ?? rootFd;
  const pending = components(relPath);
  let follows = 0;
  try {
    if (pending.length === 0) return fs.openSync(fdPath(rootFd), flags & ~O_NOFOLLOW);
    while (pending.length > 0) {
      const part = pending.shift()!;
      const last = pending.length === 0;
      if (part === "..") {
        const popped = stack.pop();
        if (popped !== undefined) fs.closeSync(popped);
        if (last) return fs.openSync(fdPath(top()), flags & ~O_NOFOLLOW);
        continue;
      }
      const fd = fs.openSync(fdPath(top(), part), O_PATH | O_NOFOLLOW | O_CLOEXEC);
      const stat = fs.fstatSync(fd);
      if (stat.isSymbolicLink() && !(last && flags & O_NOFOLLOW)) {
        fs.closeSync(fd);
        if (policy === "no-symlinks") throw errnoError("ELOOP", relPath);
        if (++follows > MAX_SYMLINK_FOLLOWS) throw errnoError("ELOOP", relPath);
        const target = fs.readlinkSync(fdPath(top(), part));
        if (target.startsWith("/")) {
          for (const held of stack.splice(0)) fs.closeSync(held);
        }
        pending.unshift(...components(target));
        if (pending.length === 0) return fs.openSync(fdPath(top()), flags & ~O_NOFOLLOW);
        continue;
      }
      if (last) {
        fs.closeSync(fd);
        if (flags & O_DIRECTORY && !stat.isDirectory()) throw errnoError("ENOTDIR", relPath);
        return fs.openSync(fdPath(top(), part), flags | O_NOFOLLOW);
      }
      if (!stat.isDirectory()) {
        fs.closeSync(fd);
        throw errnoError("ENOTDIR", relPath);
      }
      stack.push(fd);
    }
    throw errnoError("EINVAL", relPath);
  } finally {
    for (const held of stack) fs.closeSync(held);
  }
}

/** Reads a whole (small) file inside a root, following symlinks in-root; undefined when it does not exist. */
export function readFileInRoot(rootDir: string, relPath: string, maxBytes: number): Uint8Array | undefined {
  const rootFd = fs.openSync(rootDir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  let fd: number;
  try {
    fd = openInRoot(rootFd, relPath, fs.constants.O_RDONLY, "in-root");
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === "ENOENT" || code === "ENOTDIR") return undefined;
    throw err;
  } finally {
    fs.closeSync(rootFd);
  }
  try {
    const stat = fs.fstatSync(fd);
    if (!stat.isFile()) return undefined;
    if (stat.size > maxBytes) {
      throw new MagikError(
        "InvalidInput",
        `${relPath} in the root filesystem is larger than ${maxBytes} bytes`,
        {
          details: { path: relPath, size: stat.size, max: maxBytes },
        },
      );
    }
    const buf = Buffer.alloc(stat.size);
    let offset = 0;
    while (offset < buf.length) {
      const n = fs.readSync(fd, buf, offset, buf.length - offset, offset);
      if (n === 0) break;
      offset += n;
    }
    return new Uint8Array(buf.subarray(0, offset));
  } finally {
    fs.closeSync(fd);
  }
}
