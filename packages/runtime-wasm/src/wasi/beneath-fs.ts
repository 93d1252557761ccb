/**
 * HostFs on openat2(2) with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS from an fd on the preopen root, plus the *at
 * calls on an O_PATH fd of the parent directory: the kernel refuses any resolution that would leave the root or
 * cross a symlink, so a concurrent swap of a directory for a symlink cannot redirect an operation outside.
 */
import { closeSync, constants, fstatSync } from "node:fs";
import { createRequire } from "node:module";
import { Errno } from "./constants.ts";
import { WasiError } from "./errors.ts";
import type { FsRoot, HostFs } from "./host-fs.ts";
import { wasiErrnoFromLinux } from "./libc.ts";
import { timespecs } from "./stat.ts";

const SYS_OPENAT2 = 437n; // same number on every architecture (added after the syscall table unification)
const O_PATH = 0o10000000;
const O_CLOEXEC = 0o2000000;
const RESOLVE_NO_MAGICLINKS = 0x02n;
const RESOLVE_NO_SYMLINKS = 0x04n;
const RESOLVE_BENEATH = 0x08n;
const AT_SYMLINK_NOFOLLOW = 0x100;
const AT_REMOVEDIR = 0x200;
const EXDEV = 18;

function cString(text: string): Buffer {
  return Buffer.from(`${text}\0`);
}

function relPath(rel: readonly string[]): string {
  return rel.length === 0 ? "." : rel.join("/");
}

/** Loads the bindings and checks openat2 works here; null when it does not (old kernel, no glibc, seccomp). */
export function loadBeneathFs(probeDirFd: number): HostFs | null {
  if (bindings === undefined) {
    try {
      bindings = create();
    } catch {
      bindings = null;
    }
  }
  const fs = bindings;
  if (fs === null) return null;
  try {
    closeSync(fs.open({ root: "", rootFd: probeDirFd }, [], O_PATH | constants.O_DIRECTORY, 0));
    return fs;
  } catch {
    return null;
  }
}

/** One dlopen per thread: the bindings are stateless, the roots are passed per call. */
let bindings: HostFs | null | undefined;

function create(): HostFs {
  const ffi = createRequire(import.meta.url)("bun:ffi") as typeof import("bun:ffi");
  const { i32, i64, u64, ptr: p } = ffi.FFIType;
  const lib = ffi.dlopen("libc.so.6", {
    syscall: { args: [i64, i64, p, p, u64], returns: i64 },
    mkdirat: { args: [i32, p, u64], returns: i32 },
    unlinkat: { args: [i32, p, i32], returns: i32 },
    renameat: { args: [i32, p, i32, p], returns: i32 },
    linkat: { args: [i32, p, i32, p, i32], returns: i32 },
    symlinkat: { args: [p, i32, p], returns: i32 },
    readlinkat: { args: [i32, p, p, u64], returns: i64 },
    utimensat: { args: [i32, p, p, i32], returns: i32 },
    __errno_location: { args: [], returns: p },
  });
  const s = lib.symbols;
  const ptr = ffi.ptr;

  const check = (rc: number | bigint, fromOpenat2 = false): number => {
    if (Number(rc) >= 0) return Number(rc);
    const at = s.__errno_location();
    const errno = at === null ? 0 : ffi.read.i32(at, 0);
    // EXDEV from openat2 means the path tried to leave the root: report it as wasmtime reports escapes.
    throw new WasiError(fromOpenat2 && errno === EXDEV ? Errno.PERM : wasiErrnoFromLinux(errno));
  };

  const openat2 = (dirFd: number, path: string, flags: number, mode: number): number => {
    const how = new BigUint64Array([
      BigInt(flags | O_CLOEXEC),
      // The kernel refuses a mode without O_CREAT.
      BigInt(flags & constants.O_CREAT ? mode : 0),
      RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
    ]);
    return check(s.syscall(SYS_OPENAT2, BigInt(dirFd), ptr(cString(path)), ptr(how), 24n), true);
  };

  /** Runs `fn` on an O_PATH fd of the parent directory and the last component's name. */
  const inParent = <T>(at: FsRoot, rel: readonly string[], fn: (dirFd: number, name: Buffer) => T): T => {
    if (rel.length === 0) return fn(at.rootFd, cString("."));
    const dirFd = openat2(at.rootFd, relPath(rel.slice(0, -1)), O_PATH | constants.O_DIRECTORY, 0);
    try {
      return fn(dirFd, cString(rel[rel.length - 1]!));
    } finally {
      closeSync(dirFd);
    }
  };

  const inTwoParents = (
    from: FsRoot,
    fromRel: readonly string[],
    to: FsRoot,
    toRel: readonly string[],
    fn: (fromFd: number, fromName: Buffer, toFd: number, toName: Buffer) => number,
  ): void => {
    inParent(from, fromRel, (fromFd, fromName) =>
      inParent(to, toRel, (toFd, toName) => check(fn(fromFd, fromName, toFd, toName))),
    );
  };

  return {
    confined: true,
    lstat(at, rel) {
      const fd = openat2(at.rootFd, relPath(rel), O_PATH | constants.O_NOFOLLOW, 0);
      try {
        return fstatSync(fd, { bigint: true });
      } finally {
        closeSync(fd);
      }
    },
    readlink(at, rel) {
      return inParent(at, rel, (dirFd, name) => {
        const buf = new Uint8Array(4096);
        const n = check(s.readlinkat(dirFd, ptr(name), ptr(buf), BigInt(buf.length)));
        return buf.slice(0, n);
      });
    },
    open: (at, rel, flags, mode) => openat2(at.rootFd, relPath(rel), flags, mode),
    mkdir(at, rel) {
      inParent(at, rel, (dirFd, name) => check(s.mkdirat(dirFd, ptr(name), 0o777n)));
    },
    rmdir(at, rel) {
      inParent(at, rel, (dirFd, name) => check(s.unlinkat(dirFd, ptr(name), AT_REMOVEDIR)));
    },
    unlink(at, rel) {
      inParent(at, rel, (dirFd, name) => check(s.unlinkat(dirFd, ptr(name), 0)));
    },
    rename(from, fromRel, to, toRel) {
      inTwoParents(from, fromRel, to, toRel, (a, an, b, bn) => s.renameat(a, ptr(an), b, ptr(bn)));
    },
    link(from, fromRel, to, toRel) {
      inTwoParents(from, fromRel, to, toRel, (a, an, b, bn) => s.linkat(a, ptr(an), b, ptr(bn), 0));
    },
    symlink(target, at, rel) {
      inParent(at, rel, (dirFd, name) => check(s.symlinkat(ptr(cString(target)), dirFd, ptr(name))));
    },
    setTimes(at, rel, atim, mtim, fstflags) {
      const times = timespecs(atim, mtim, fstflags);
      inParent(at, rel, (dirFd, name) =>
        check(s.utimensat(dirFd, ptr(name), ptr(times), AT_SYMLINK_NOFOLLOW)),
      );
    },
  };
}
