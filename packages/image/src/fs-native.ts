import { dlopen, FFIType, type Pointer, ptr, read } from "bun:ffi";
import fs from "node:fs";

/**
 * The few libc calls node:fs lacks, through bun:ffi: openat2 (RESOLVE_IN_ROOT), mknodat, xattrs, mount/umount2.
 * Kept tiny and behind plain functions that throw errors carrying `code` (errno name) and `errno`, like node:fs,
 * so the callers' logic does not depend on ffi.
 */

export const O_PATH = 0o10000000;
/** Same value on x86_64 and aarch64. */
export const O_CLOEXEC = 0o2000000;

export const RESOLVE_NO_XDEV = 0x01;
export const RESOLVE_NO_MAGICLINKS = 0x02;
export const RESOLVE_NO_SYMLINKS = 0x04;
export const RESOLVE_BENEATH = 0x08;
export const RESOLVE_IN_ROOT = 0x10;

export const MS_RDONLY = 1;
export const MNT_DETACH = 2;

const SYS_OPENAT2: Partial<Record<string, number>> = { x64: 437, arm64: 437 };

const ERRNO_NAMES: Record<number, string> = {
  1: "EPERM",
  2: "ENOENT",
  5: "EIO",
  9: "EBADF",
  12: "ENOMEM",
  13: "EACCES",
  16: "EBUSY",
  17: "EEXIST",
  18: "EXDEV",
  19: "ENODEV",
  20: "ENOTDIR",
  21: "EISDIR",
  22: "EINVAL",
  28: "ENOSPC",
  34: "ERANGE",
  36: "ENAMETOOLONG",
  38: "ENOSYS",
  40: "ELOOP",
  61: "ENODATA",
  95: "EOPNOTSUPP",
};

export class NativeFsError extends Error {
  readonly code: string;
  readonly errno: number;
  readonly syscall: string;
  constructor(syscall: string, errno: number, subject: string) {
    const code = ERRNO_NAMES[errno] ?? `E${errno}`;
    super(`${syscall} ${subject}: ${code}`);
    this.code = code;
    this.errno = errno;
    this.syscall = syscall;
  }
}

let libc: ReturnType<typeof openLibc> | undefined;

function openLibc() {
  const { i32, i64, u32, u64, ptr: p } = FFIType;
  return dlopen("libc.so.6", {
    syscall: { args: [i64, i32, p, p, u64], returns: i64 },
    mknodat: { args: [i32, p, u32, u64], returns: i32 },
    lsetxattr: { args: [p, p, p, u64, i32], returns: i32 },
    setxattr: { args: [p, p, p, u64, i32], returns: i32 },
    fsetxattr: { args: [i32, p, p, u64, i32], returns: i32 },
    lgetxattr: { args: [p, p, p, u64], returns: i64 },
    llistxattr: { args: [p, p, u64], returns: i64 },
    mount: { args: [p, p, p, u64, p], returns: i32 },
    umount2: { args: [p, i32], returns: i32 },
    __errno_location: { args: [], returns: p },
  }).symbols;
}

function lib() {
  libc ??= openLibc();
  return libc;
}

function errno(): number {
  const location = lib().__errno_location() as Pointer | null;
  return location ? read.i32(location, 0) : 0;
}

function cstr(value: string): Buffer {
  return Buffer.from(`${value}\0`, "utf8");
}

function fail(syscall: string, subject: string): never {
  throw new NativeFsError(syscall, errno(), subject);
}

let openat2State: "unknown" | "yes" | "no" = "unknown";

/** Whether this kernel (and seccomp policy) lets us call openat2. Probed once. */
export function hasOpenat2(): boolean {
  if (openat2State === "unknown") {
    if (SYS_OPENAT2[process.arch] === undefined) {
      openat2State = "no";
    } else {
      const root = fs.openSync("/", O_PATH | O_CLOEXEC);
      try {
        fs.closeSync(openat2(root, ".", O_PATH | O_CLOEXEC, RESOLVE_IN_ROOT));
        openat2State = "yes";
      } catch {
        openat2State = "no";
      } finally {
        fs.closeSync(root);
      }
    }
  }
  return openat2State === "yes";
}

/** Test hook: pretend the kernel lacks openat2, so the portable walk is exercised. */
export function setOpenat2Available(available: boolean | undefined): void {
  openat2State = available === undefined ? "unknown" : available ? "yes" : "no";
}

export function openat2(dirfd: number, path: string, flags: number, resolve: number, mode = 0): number {
  const how = new BigUint64Array([BigInt(flags), BigInt(mode), BigInt(resolve)]);
  const name = cstr(path);
  const fd = Number(lib().syscall(SYS_OPENAT2[process.arch] ?? -1, dirfd, ptr(name), ptr(how), 24));
  if (fd < 0) fail("openat2", path);
  return fd;
}

function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major);
  const mi = BigInt(minor);
  return ((ma & 0xfffff000n) << 32n) | ((ma & 0xfffn) << 8n) | ((mi & 0xffffff00n) << 12n) | (mi & 0xffn);
}

/** mknodat(2): `mode` includes the file type bits (S_IFCHR, S_IFBLK, S_IFIFO). */
export function mknodat(dirfd: number, name: string, mode: number, major = 0, minor = 0): void {
  const path = cstr(name);
  if (lib().mknodat(dirfd, ptr(path), mode, makedev(major, minor)) !== 0) fail("mknodat", name);
}

export function lsetxattr(path: string, name: string, value: Uint8Array): void {
  const p = cstr(path);
  const n = cstr(name);
  const v = value.length > 0 ? value : new Uint8Array(1);
  if (lib().lsetxattr(ptr(p), ptr(n), ptr(v), value.length, 0) !== 0) fail("lsetxattr", `${path} ${name}`);
}

/** setxattr(2), which follows a final symlink: use it on /proc/self/fd/<O_PATH fd> magic links. */
export function setxattr(path: string, name: string, value: Uint8Array): void {
  const p = cstr(path);
  const n = cstr(name);
  const v = value.length > 0 ? value : new Uint8Array(1);
  if (lib().setxattr(ptr(p), ptr(n), ptr(v), value.length, 0) !== 0) fail("setxattr", `${path} ${name}`);
}

export function fsetxattr(fd: number, name: string, value: Uint8Array): void {
  const n = cstr(name);
  const v = value.length > 0 ? value : new Uint8Array(1);
  if (lib().fsetxattr(fd, ptr(n), ptr(v), value.length, 0) !== 0) fail("fsetxattr", name);
}

/** The value of one xattr, or undefined when the file does not have it. */
export function lgetxattr(path: string, name: string): Uint8Array | undefined {
  const p = cstr(path);
  const n = cstr(name);
  let buf = new Uint8Array(256);
  for (;;) {
    const size = Number(lib().lgetxattr(ptr(p), ptr(n), ptr(buf), buf.length));
    if (size >= 0) return buf.slice(0, size);
    const code = errno();
    if (code === 61 || code === 95) return undefined;
    if (code !== 34) throw new NativeFsError("lgetxattr", code, `${path} ${name}`);
    buf = new Uint8Array(buf.length * 4);
    if (buf.length > 1 << 20) throw new NativeFsError("lgetxattr", code, `${path} ${name}`);
  }
}

export function llistxattr(path: string): string[] {
  const p = cstr(path);
  const size = Number(lib().llistxattr(ptr(p), null, 0));
  if (size < 0) {
    if (errno() === 95) return [];
    fail("llistxattr", path);
  }
  if (size === 0) return [];
  const buf = new Uint8Array(size);
  const got = Number(lib().llistxattr(ptr(p), ptr(buf), size));
  if (got < 0) fail("llistxattr", path);
  return Buffer.from(buf.subarray(0, got)).toString("utf8").split("\0").filter(Boolean);
}

export function mount(source: string, target: string, fstype: string, flags: number, data: string): void {
  const s = cstr(source);
  const t = cstr(target);
  const f = cstr(fstype);
  const d = cstr(data);
  if (lib().mount(ptr(s), ptr(t), ptr(f), flags, ptr(d)) !== 0) fail("mount", target);
}

export function umount2(target: string, flags = 0): void {
  const t = cstr(target);
  if (lib().umount2(ptr(t), flags) !== 0) fail("umount2", target);
}
