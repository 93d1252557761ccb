import { constants, fstatSync } from "node:fs";
import {
  Errno,
  Fdflags,
  Filetype,
  Lookupflags,
  Oflags,
  RIGHTS_DIR,
  RIGHTS_FILE,
  Rights,
} from "./constants.ts";
import type { WasiContext, WasiFunctions } from "./context.ts";
import { fail } from "./errors.ts";
import { type DirEntry, filetypeOf } from "./fd-table.ts";
import { hostPathOf, type ResolvedPath, resolvePath } from "./sandbox.ts";
import { writeFilestat } from "./stat.ts";

const READ_RIGHTS = Rights.FD_READ | Rights.FD_READDIR;
const WRITE_RIGHTS = Rights.FD_WRITE | Rights.FD_ALLOCATE | Rights.FD_FILESTAT_SET_SIZE;

function resolveIn(ctx: WasiContext, dir: DirEntry, pathPtr: number, pathLen: number, follow: boolean) {
  return resolvePath(ctx.hostFs, dir.location, ctx.mem().string(pathPtr, pathLen), follow);
}

/** A path whose last component will be created or removed: "." and ".." name no entry of their own. */
function named(resolved: ResolvedPath, whenUnnamed: number): ResolvedPath & { name: string } {
  if (resolved.name === null) fail(whenUnnamed);
  return resolved as ResolvedPath & { name: string };
}

function hostOpenFlags(base: bigint, oflags: number, fdflags: number, readonly: boolean): number {
  const c = constants;
  const wantsWrite = (base & WRITE_RIGHTS) !== 0n && !readonly;
  const wantsRead = (base & READ_RIGHTS) !== 0n || !wantsWrite;
  let flags = wantsWrite ? (wantsRead ? c.O_RDWR : c.O_WRONLY) : c.O_RDONLY;
  // Symlinks were expanded by the sandbox walk; one appearing at the end now is a race or a nofollow request.
  flags |= c.O_NOFOLLOW;
  if (oflags & Oflags.CREAT) flags |= c.O_CREAT;
  if (oflags & Oflags.EXCL) flags |= c.O_EXCL;
  if (oflags & Oflags.TRUNC) flags |= c.O_TRUNC;
  if (oflags & Oflags.DIRECTORY) flags |= c.O_DIRECTORY;
  if (fdflags & Fdflags.APPEND) flags |= c.O_APPEND;
  if (fdflags & Fdflags.NONBLOCK) flags |= c.O_NONBLOCK;
  if (fdflags & Fdflags.DSYNC) flags |= c.O_DSYNC;
  if (fdflags & (Fdflags.SYNC | Fdflags.RSYNC)) flags |= c.O_SYNC;
  return flags;
}

export function pathCalls(ctx: WasiContext): WasiFunctions {
  return {
    path_open(
      fd: number,
      dirflags: number,
      pathPtr: number,
      pathLen: number,
      oflags: number,
      rightsBase: bigint,
      rightsInheriting: bigint,
      fdflags: number,
      fdPtr: number,
    ): number {
      let needed = Rights.PATH_OPEN;
      if (oflags & Oflags.CREAT) needed |= Rights.PATH_CREATE_FILE;
      if (oflags & Oflags.TRUNC) needed |= Rights.PATH_FILESTAT_SET_SIZE;
      const dir = ctx.fds.getDir(fd, needed);
      if ((oflags & ~0xf) !== 0 || (fdflags & ~0x1f) !== 0) return Errno.INVAL;
      const follow = (dirflags & Lookupflags.SYMLINK_FOLLOW) !== 0;
      const resolved = resolveIn(ctx, dir, pathPtr, pathLen, follow);
      if (resolved.name === null && oflags & Oflags.CREAT && oflags & Oflags.EXCL) return Errno.EXIST;
      // Rights the directory may not hand on are dropped rather than refused: wasi-libc asks for the maximum.
      const base = BigInt.asUintN(64, rightsBase) & dir.rightsInheriting;
      const inheriting = BigInt.asUintN(64, rightsInheriting) & dir.rightsInheriting;
      let flags = hostOpenFlags(base, oflags, fdflags, dir.readonly);
      if (resolved.mustBeDir) flags |= constants.O_DIRECTORY;
      const hostFd = ctx.hostFs.open(dir.location, resolved.rel, flags, 0o666);
      const stat = fstatSync(hostFd);
      const filetype = filetypeOf(stat);
      const entry =
        filetype === Filetype.DIRECTORY
          ? ({
              kind: "dir",
              hostFd,
              // Like wasmtime (cap-std), every directory fd is a root of its own: ".." cannot climb out of it,
              // and it keeps addressing its directory after renames because resolution starts at its host fd.
              location: { root: hostPathOf(dir.location.root, resolved.rel), rootFd: hostFd, rel: [] },
              readonly: dir.readonly,
              filetype,
              rightsBase: base & RIGHTS_DIR,
              rightsInheriting: inheriting,
              fdflags: fdflags,
            } as const)
          : ({
              kind: "file",
              hostFd,
              position: 0,
              filetype,
              rightsBase: base & RIGHTS_FILE,
              rightsInheriting: inheriting & RIGHTS_FILE,
              fdflags: fdflags,
            } as const);
      const newFd = ctx.fds.add({ ...entry });
      ctx.mem().setU32(fdPtr, newFd);
      return Errno.SUCCESS;
    },

    path_create_directory(fd: number, pathPtr: number, pathLen: number): number {
      const dir = ctx.fds.getDir(fd, Rights.PATH_CREATE_DIRECTORY);
      const target = named(resolveIn(ctx, dir, pathPtr, pathLen, false), Errno.EXIST);
      ctx.hostFs.mkdir(dir.location, target.rel);
      return Errno.SUCCESS;
    },

    path_remove_directory(fd: number, pathPtr: number, pathLen: number): number {
      const dir = ctx.fds.getDir(fd, Rights.PATH_REMOVE_DIRECTORY);
      const target = named(resolveIn(ctx, dir, pathPtr, pathLen, false), Errno.INVAL);
      ctx.hostFs.rmdir(dir.location, target.rel);
      return Errno.SUCCESS;
    },

    path_unlink_file(fd: number, pathPtr: number, pathLen: number): number {
      const dir = ctx.fds.getDir(fd, Rights.PATH_UNLINK_FILE);
      const target = named(resolveIn(ctx, dir, pathPtr, pathLen, false), Errno.ISDIR);
      if (target.mustBeDir) {
        // "file/" names a directory: unlinking it is ENOTDIR for files, EISDIR for directories.
        return ctx.hostFs.lstat(dir.location, target.rel).isDirectory() ? Errno.ISDIR : Errno.NOTDIR;
      }
      ctx.hostFs.unlink(dir.location, target.rel);
      return Errno.SUCCESS;
    },

    path_filestat_get(fd: number, flags: number, pathPtr: number, pathLen: number, ptr: number): number {
      const dir = ctx.fds.getDir(fd, Rights.PATH_FILESTAT_GET);
      const follow = (flags & Lookupflags.SYMLINK_FOLLOW) !== 0;
      const target = resolveIn(ctx, dir, pathPtr, pathLen, follow);
      const stat = ctx.hostFs.lstat(dir.location, target.rel);
      if (target.mustBeDir && !stat.isDirectory()) return Errno.NOTDIR;
      writeFilestat(ctx.mem(), ptr, stat);
      return Errno.SUCCESS;
    },

    path_filestat_set_times(
      fd: number,
      flags: number,
      pathPtr: number,
      pathLen: number,
      atim: bigint,
      mtim: bigint,
      fstflags: number,
    ): number {
      const dir = ctx.fds.getDir(fd, Rights.PATH_FILESTAT_SET_TIMES);
      const follow = (flags & Lookupflags.SYMLINK_FOLLOW) !== 0;
      const target = resolveIn(ctx, dir, pathPtr, pathLen, follow);
      // The walk already followed the link when asked to, so a nofollow update acts on the right inode.
      ctx.hostFs.setTimes(dir.location, target.rel, atim, mtim, fstflags);
      return Errno.SUCCESS;
    },

    path_link(
      oldFd: number,
      oldFlags: number,
      oldPtr: number,
      oldLen: number,
      newFd: number,
      newPtr: number,
      newLen: number,
    ): number {
      const from = ctx.fds.getDir(oldFd, Rights.PATH_LINK_SOURCE);
      const to = ctx.fds.getDir(newFd, Rights.PATH_LINK_TARGET);
      const follow = (oldFlags & Lookupflags.SYMLINK_FOLLOW) !== 0;
      const source = named(resolveIn(ctx, from, oldPtr, oldLen, follow), Errno.PERM);
      const target = named(resolveIn(ctx, to, newPtr, newLen, false), Errno.EXIST);
      if (source.mustBeDir || target.mustBeDir) {
        return ctx.hostFs.lstat(from.location, source.rel).isDirectory() ? Errno.PERM : Errno.NOTDIR;
      }
      ctx.hostFs.link(from.location, source.rel, to.location, target.rel);
      return Errno.SUCCESS;
    },

    path_readlink(
      fd: number,
      pathPtr: number,
      pathLen: number,
      buf: number,
      bufLen: number,
      bufusedPtr: number,
    ): number {
      const dir = ctx.fds.getDir(fd, Rights.PATH_READLINK);
      const target = resolveIn(ctx, dir, pathPtr, pathLen, false);
      const contents = ctx.hostFs.readlink(dir.location, target.rel);
      const n = Math.min(contents.length, bufLen);
      const mem = ctx.mem();
      mem.slice(buf, n).set(contents.subarray(0, n));
      mem.setU32(bufusedPtr, n);
      return Errno.SUCCESS;
    },

    path_rename(
      oldFd: number,
      oldPtr: number,
      oldLen: number,
      newFd: number,
      newPtr: number,
      newLen: number,
    ): number {
      const from = ctx.fds.getDir(oldFd, Rights.PATH_RENAME_SOURCE);
      const to = ctx.fds.getDir(newFd, Rights.PATH_RENAME_TARGET);
      const source = named(resolveIn(ctx, from, oldPtr, oldLen, false), Errno.BUSY);
      const target = named(resolveIn(ctx, to, newPtr, newLen, false), Errno.BUSY);
      if (source.mustBeDir || target.mustBeDir) {
        // rename(2) only accepts a trailing slash when the source is a directory.
        if (!ctx.hostFs.lstat(from.location, source.rel).isDirectory()) return Errno.NOTDIR;
      }
      ctx.hostFs.rename(from.location, source.rel, to.location, target.rel);
      return Errno.SUCCESS;
    },

    path_symlink(oldPtr: number, oldLen: number, fd: number, newPtr: number, newLen: number): number {
      const dir = ctx.fds.getDir(fd, Rights.PATH_SYMLINK);
      const contents = ctx.mem().string(oldPtr, oldLen);
      // An absolute target could never be followed inside the sandbox, and would point host tools outside it.
      if (contents.startsWith("/")) return Errno.PERM;
      const target = named(resolveIn(ctx, dir, newPtr, newLen, false), Errno.EXIST);
      if (target.mustBeDir) return Errno.NOENT;
      ctx.hostFs.symlink(contents, dir.location, target.rel);
      return Errno.SUCCESS;
    },
  };
}
