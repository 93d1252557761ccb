import fs from "node:fs";
import { MagikError } from "@magikrun/spec";
import { fsetxattr, lsetxattr, O_CLOEXEC, O_PATH } from "../fs-native.ts";
import { fdPath, openInRoot } from "../resolve-in-root.ts";
import type { TarHeader } from "./tar-reader.ts";
import type { UnionView } from "./union-view.ts";

const { O_DIRECTORY, O_NOFOLLOW, O_RDONLY } = fs.constants;

/** The overlayfs opaque-directory marker; never accepted from a layer, only written by us. */
export const OPAQUE_XATTR = "trusted.overlay.opaque";

/**
 * The directory a layer is being written into, operated on only through directory fds: every entry is created as
 * `/proc/self/fd/<parent fd>/<name>` with calls that do not follow the final component, and parent fds are opened
 * with RESOLVE_NO_SYMLINKS (openat2) or an O_NOFOLLOW walk, so nothing can be written outside it.
 */
export class UpperTree {
  readonly rootFd: number;
  readonly #dirFds = new Map<string, number>();
  /** Every path something was created at in this layer (a superset of what exists now). */
  readonly #created = new Set<string>();
  readonly #view: UnionView;
  readonly privileged: boolean;
  readonly warnings: string[];

  constructor(dir: string, view: UnionView, privileged: boolean, warnings: string[]) {
    this.rootFd = fs.openSync(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    this.#view = view;
    this.privileged = privileged;
    this.warnings = warnings;
  }

  close(): void {
    for (const fd of this.#dirFds.values()) fs.closeSync(fd);
    this.#dirFds.clear();
    fs.closeSync(this.rootFd);
  }

  #forget(rel: string): void {
    for (const [known, fd] of this.#dirFds) {
      if (known === rel || known.startsWith(`${rel}/`)) {
        fs.closeSync(fd);
        this.#dirFds.delete(known);
      }
    }
    this.#view.forgetUpper(rel);
  }

  /** An O_PATH fd of the directory `parts` in this layer, creating missing directories (copying the attributes of the lower layer's directory when there is one, as overlayfs copy-up would). */
  dirFd(parts: string[]): number {
    if (parts.length === 0) return this.rootFd;
    const rel = parts.join("/");
    const cached = this.#dirFds.get(rel);
    if (cached !== undefined) return cached;
    let fd: number | undefined;
    try {
      fd = openInRoot(this.rootFd, rel, O_PATH | O_DIRECTORY, "no-symlinks");
    } catch {
      const parentFd = this.dirFd(parts.slice(0, -1));
      const name = parts[parts.length - 1]!;
      const existing = lstatOrUndefined(fdPath(parentFd, name));
      if (existing && !existing.isDirectory()) {
        const upper = this.#view.layers[0]!;
        if (!upper.whiteouts.has(rel)) {
          throw new MagikError("LayerExtractionFailed", `${rel} is not a directory`, {
            details: { path: rel },
          });
        }
        // A whiteout made by this layer, now a directory again: the lower one must stay hidden.
        fs.unlinkSync(fdPath(parentFd, name));
        upper.whiteouts.delete(rel);
        upper.opaques.add(rel);
      }
      if (!existing?.isDirectory()) this.#makeImplicitDir(parentFd, name, rel);
      fd = fs.openSync(fdPath(parentFd, name), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (this.#dirFds.size >= 256) this.#forgetAllFds();
    this.#dirFds.set(rel, fd);
    this.#view.upperDirs.add(rel);
    return fd;
  }

  markCreated(rel: string): void {
    this.#created.add(rel);
  }

  #forgetAllFds(): void {
    for (const fd of this.#dirFds.values()) fs.closeSync(fd);
    this.#dirFds.clear();
  }

  #makeImplicitDir(parentFd: number, name: string, rel: string): void {
    const lowerDir = this.#view.lowerDirAt(rel);
    const lower = lowerDir ? fs.lstatSync(lowerDir) : undefined;
    fs.mkdirSync(fdPath(parentFd, name), 0o700);
    this.#created.add(rel);
    const fd = fs.openSync(fdPath(parentFd, name), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    try {
      if (lower && this.privileged) fs.fchownSync(fd, lower.uid, lower.gid);
      fs.fchmodSync(fd, lower ? lower.mode & 0o7777 : 0o755);
      if (lower) fs.futimesSync(fd, lower.mtime, lower.mtime);
      if (this.#view.layers[0]!.opaques.has(rel)) this.markOpaque(fd, rel);
    } finally {
      fs.closeSync(fd);
    }
  }

  /** Removes whatever is at `name` in `parentFd`, unless both it and the new entry are directories (then merged). */
  clear(parentFd: number, name: string, rel: string, keepDir: boolean): "kept" | "cleared" {
    // The layer dir starts empty and only we write it: a path never created cannot exist (saves an lstat per entry).
    if (!this.#created.has(rel)) {
      this.#created.add(rel);
      return "cleared";
    }
    const existing = lstatOrUndefined(fdPath(parentFd, name));
    if (!existing) return "cleared";
    if (existing.isDirectory() && keepDir) return "kept";
    this.#forget(rel);
    if (existing.isDirectory()) fs.rmSync(fdPath(parentFd, name), { recursive: true, force: true });
    else fs.unlinkSync(fdPath(parentFd, name));
    return "cleared";
  }

  /** Sets the opaque marker when the filesystem and our privileges allow it (else the layer is copy-only). */
  markOpaque(dirFd: number, rel: string): boolean {
    this.#view.layers[0]!.opaques.add(rel);
    if (!this.privileged) return false;
    try {
      fsetxattr(dirFd, OPAQUE_XATTR, new TextEncoder().encode("y"));
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Ownership, mode (after chown, which clears setuid/setgid), xattrs and mtime, through an fd opened on the entry
   * (symlinks: through the parent fd, never following). `fd` must be a real (not O_PATH) fd, or undefined.
   */
  applyMetadata(header: TarHeader, entry: { fd?: number; parentFd: number; name: string }): void {
    const path = fdPath(entry.parentFd, entry.name);
    const isSymlink = header.type === "symlink";
    // chown/chmod journal a metadata write even when nothing changes: look first (a stat is cheap), act if needed.
    const current = entry.fd !== undefined ? fs.fstatSync(entry.fd) : fs.lstatSync(path);
    const chown = current.uid !== header.uid || current.gid !== header.gid;
    if (chown) {
      if (this.privileged) {
        if (entry.fd !== undefined) fs.fchownSync(entry.fd, header.uid, header.gid);
        else fs.lchownSync(path, header.uid, header.gid);
      } else if (this.warnings.length < 100) {
        this.warnings.push(
          `${header.path}: ownership ${header.uid}:${header.gid} not kept (not running as root)`,
        );
      }
    }
    // After chown, which clears setuid/setgid.
    if (!isSymlink && (chown || (current.mode & 0o7777) !== header.mode)) {
      if (entry.fd !== undefined) fs.fchmodSync(entry.fd, header.mode);
      else fs.chmodSync(path, header.mode);
    }
    for (const [name, value] of header.xattrs) {
      if (name.startsWith("trusted.overlay.")) {
        this.warnings.push(`${header.path}: overlayfs xattr ${name} refused`);
        continue;
      }
      try {
        if (entry.fd !== undefined) fsetxattr(entry.fd, name, value);
        else lsetxattr(path, name, value);
      } catch (err) {
        this.warnings.push(`${header.path}: xattr ${name} not kept (${(err as { code?: string }).code})`);
      }
    }
    if (header.type !== "dir") {
      const time = new Date(header.mtime * 1000);
      if (entry.fd !== undefined) fs.futimesSync(entry.fd, time, time);
      else fs.lutimesSync(path, time, time);
    }
  }
}

export function lstatOrUndefined(path: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(path, { throwIfNoEntry: false });
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === "ENOENT" || code === "ENOTDIR") return undefined;
    throw err;
  }
}
