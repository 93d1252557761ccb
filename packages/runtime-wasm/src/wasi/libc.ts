/**
 * The few libc calls node:fs cannot make synchronously: poll(2) for readiness and the socket calls. Loaded on
 * first use through bun:ffi; when that fails (not Linux/glibc), `libc()` returns null and callers fall back to
 * the errno a runtime without the feature reports.
 */
import { createRequire } from "node:module";
import { errnoFromHostCode } from "./errors.ts";

export interface Libc {
  poll(fds: Uint8Array, count: number, timeoutMs: number): number;
  accept4(fd: number, flags: number): number;
  recv(fd: number, buf: Uint8Array, len: number, flags: number): number;
  send(fd: number, buf: Uint8Array, len: number, flags: number): number;
  shutdown(fd: number, how: number): number;
  fionread(fd: number): number;
  getsockopt_type(fd: number): number;
  /** Sets or clears O_NONBLOCK on a host fd; -1 on failure. */
  setNonblocking(fd: number, on: boolean): number;
  /** futimens/utimensat (nofollow) with a timespec[2] in `times`; ns-exact where node:fs rounds to doubles. */
  futimens(fd: number, times: BigInt64Array): number;
  lutimensat(path: string, times: BigInt64Array): number;
  errno(): number;
}

export const POLLIN = 0x1;
export const POLLOUT = 0x4;
export const POLLERR = 0x8;
export const POLLHUP = 0x10;
export const POLLNVAL = 0x20;
export const MSG_PEEK = 0x2;
export const MSG_WAITALL = 0x100;
export const MSG_NOSIGNAL = 0x4000;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;

const FIONREAD = 0x541b;
const F_GETFL = 3;
const F_SETFL = 4;
const O_NONBLOCK = 0o4000;
const AT_FDCWD = -100;
const AT_SYMLINK_NOFOLLOW = 0x100;
export const UTIME_NOW = (1n << 30n) - 1n;
export const UTIME_OMIT = (1n << 30n) - 2n;
const SOL_SOCKET = 1;
const SO_TYPE = 3;

/** Linux (asm-generic: x86_64, aarch64) errno numbers by name, for errors reported through bun:ffi. */
const LINUX_ERRNO_NAMES: Record<number, string> = {
  1: "EPERM",
  2: "ENOENT",
  4: "EINTR",
  5: "EIO",
  6: "ENXIO",
  7: "E2BIG",
  9: "EBADF",
  11: "EAGAIN",
  12: "ENOMEM",
  13: "EACCES",
  14: "EFAULT",
  16: "EBUSY",
  17: "EEXIST",
  18: "EXDEV",
  19: "ENODEV",
  20: "ENOTDIR",
  21: "EISDIR",
  22: "EINVAL",
  23: "ENFILE",
  24: "EMFILE",
  26: "ETXTBSY",
  27: "EFBIG",
  28: "ENOSPC",
  29: "ESPIPE",
  30: "EROFS",
  31: "EMLINK",
  32: "EPIPE",
  36: "ENAMETOOLONG",
  38: "ENOSYS",
  39: "ENOTEMPTY",
  40: "ELOOP",
  75: "EOVERFLOW",
  84: "EILSEQ",
  88: "ENOTSOCK",
  95: "EOPNOTSUPP",
  103: "ECONNABORTED",
  104: "ECONNRESET",
  107: "ENOTCONN",
  110: "ETIMEDOUT",
  111: "ECONNREFUSED",
  122: "EDQUOT",
};

/** The preview 1 errno for a Linux errno number. */
export function wasiErrnoFromLinux(errno: number): number {
  return errnoFromHostCode(LINUX_ERRNO_NAMES[errno] ?? "EIO");
}

let loaded: Libc | null | undefined;

export function libc(): Libc | null {
  if (loaded !== undefined) return loaded;
  try {
    loaded = load();
  } catch {
    loaded = null;
  }
  return loaded;
}

function load(): Libc {
  // A runtime require keeps bundlers and vitest's module graph away from the bun: scheme.
  const ffi = createRequire(import.meta.url)("bun:ffi") as typeof import("bun:ffi");
  const { dlopen, FFIType, ptr } = ffi;
  const { i32, i64, u64, ptr: p } = FFIType;
  const lib = dlopen("libc.so.6", {
    poll: { args: [p, u64, i32], returns: i32 },
    accept4: { args: [i32, p, p, i32], returns: i32 },
    recv: { args: [i32, p, u64, i32], returns: i64 },
    send: { args: [i32, p, u64, i32], returns: i64 },
    shutdown: { args: [i32, i32], returns: i32 },
    ioctl: { args: [i32, u64, p], returns: i32 },
    getsockopt: { args: [i32, i32, i32, p, p], returns: i32 },
    futimens: { args: [i32, p], returns: i32 },
    utimensat: { args: [i32, p, p, i32], returns: i32 },
    fcntl: { args: [i32, i32, i32], returns: i32 },
    __errno_location: { args: [], returns: p },
  });
  const s = lib.symbols;
  const scratch = new Int32Array(2);
  // A one-byte buffer stands in for empty ones: bun:ffi cannot take a pointer to zero bytes.
  const nonEmpty = (buf: Uint8Array) => (buf.length === 0 ? new Uint8Array(1) : buf);
  return {
    poll: (fds, count, timeoutMs) => s.poll(ptr(fds), count, timeoutMs),
    accept4: (fd, flags) => s.accept4(fd, null, null, flags),
    recv: (fd, buf, len, flags) => Number(s.recv(fd, ptr(nonEmpty(buf)), len, flags)),
    send: (fd, buf, len, flags) => Number(s.send(fd, ptr(nonEmpty(buf)), len, flags)),
    shutdown: (fd, how) => s.shutdown(fd, how),
    fionread: (fd) => {
      scratch[0] = 0;
      return s.ioctl(fd, FIONREAD, ptr(scratch)) < 0 ? -1 : scratch[0]!;
    },
    getsockopt_type: (fd) => {
      scratch[0] = 0;
      scratch[1] = 4;
      const lenView = scratch.subarray(1);
      const rc = s.getsockopt(fd, SOL_SOCKET, SO_TYPE, ptr(scratch), ptr(lenView));
      return rc < 0 ? -1 : scratch[0]!;
    },
    futimens: (fd, times) => s.futimens(fd, ptr(times)),
    lutimensat: (path, times) =>
      s.utimensat(AT_FDCWD, ptr(Buffer.from(`${path}\0`)), ptr(times), AT_SYMLINK_NOFOLLOW),
    setNonblocking: (fd, on) => {
      const flags = s.fcntl(fd, F_GETFL, 0);
      if (flags < 0) return -1;
      return s.fcntl(fd, F_SETFL, on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK);
    },
    errno: () => {
      const at = s.__errno_location();
      if (at === null) return 0;
      return ffi.read.i32(at, 0);
    },
  };
}
