import { ptr } from "bun:ffi";
import { reaperProgram } from "./launcher-build.ts";
import { launcher } from "./launcher-lib.ts";

/**
 * The kernel as the runtime uses it, in the spirit of youki's `Syscall` trait: the real implementation goes
 * through the C launcher, and unit tests of orchestration logic substitute a fake. Errors come back as
 * negative errno values, never as exceptions, so callers decide what each one means.
 */
export interface Syscall {
  /** pipe2(O_CLOEXEC) → [read, write] or -errno. */
  pipe(): [number, number] | number;
  /** Forks the reaper, which clones the container running `plan`; returns the reaper's pid or -errno. */
  /** `inherit`: the other fds the plan names (they must survive into the reaper program). */
  launch(
    plan: Uint8Array,
    cloneFlags: number,
    fds: LaunchFds,
    userNs: boolean,
    inherit: readonly number[],
  ): number;
  /** Reads up to `len` bytes within `timeoutMs`: a buffer (empty at EOF) or -errno (-ETIMEDOUT). */
  readTimeout(fd: number, len: number, timeoutMs: number): Uint8Array | number;
  write(fd: number, data: Uint8Array): number;
  close(fd: number): number;
  open(path: string, flags: number, mode?: number): number;
  flock(fd: number, op: number): number;
  mkfifo(path: string, mode: number): number;
  /** Reaps `pid` if it has exited; 0 while it runs. */
  waitpidNoHang(pid: number): number;
}

export interface LaunchFds {
  statusWrite: number;
  syncRead: number;
  stateDir: number;
  notifyWrite: number;
  /** pid namespace to join, or -1. */
  pidNs: number;
}

export const O = {
  RDONLY: 0,
  WRONLY: 1,
  RDWR: 2,
  NONBLOCK: 0o4000,
  DIRECTORY: 0o200000,
  NOFOLLOW: 0o400000,
  PATH: 0o10000000,
  CREAT: 0o100,
} as const;

export const LOCK = { SH: 1, EX: 2, NB: 4, UN: 8 } as const;

export const ERRNO_NAMES: Record<number, string> = {
  1: "EPERM",
  2: "ENOENT",
  3: "ESRCH",
  4: "EINTR",
  5: "EIO",
  9: "EBADF",
  11: "EAGAIN",
  12: "ENOMEM",
  13: "EACCES",
  16: "EBUSY",
  17: "EEXIST",
  20: "ENOTDIR",
  21: "EISDIR",
  22: "EINVAL",
  28: "ENOSPC",
  30: "EROFS",
  32: "EPIPE",
  36: "ENAMETOOLONG",
  38: "ENOSYS",
  40: "ELOOP",
  95: "EOPNOTSUPP",
  110: "ETIMEDOUT",
  111: "ECONNREFUSED",
  18: "EXDEV",
  19: "ENODEV",
  7: "E2BIG",
  10: "ECHILD",
  34: "ERANGE",
  87: "EUSERS",
  8: "ENOEXEC",
};

export function errnoName(errno: number): string {
  return ERRNO_NAMES[Math.abs(errno)] ?? `errno ${Math.abs(errno)}`;
}

export const linuxSyscall: Syscall = {
  pipe() {
    const fds = new Int32Array(2);
    const rc = launcher().mr_pipe(ptr(fds));
    return rc < 0 ? rc : [fds[0]!, fds[1]!];
  },
  launch(plan, cloneFlags, fds, userNs, inherit) {
    const fdArray = new Int32Array([fds.statusWrite, fds.syncRead, fds.stateDir, fds.notifyWrite, fds.pidNs]);
    const reaper = reaperProgram();
    const reaperPath = reaper ? Buffer.from(`${reaper}\0`) : null;
    const inheritArray = new Int32Array([...inherit, -1]);
    return launcher().mr_launch(
      ptr(plan),
      plan.length,
      cloneFlags,
      ptr(fdArray),
      userNs ? 1 : 0,
      reaperPath,
      ptr(inheritArray),
      inherit.length,
    );
  },
  readTimeout(fd, len, timeoutMs) {
    const buf = new Uint8Array(len);
    const n = launcher().mr_read_timeout(fd, ptr(buf), len, timeoutMs);
    return n < 0 ? n : buf.subarray(0, n);
  },
  write(fd, data) {
    return launcher().mr_write(fd, ptr(data), data.length);
  },
  close(fd) {
    return launcher().mr_close(fd);
  },
  open(path, flags, mode = 0o600) {
    return launcher().mr_open(Buffer.from(`${path}\0`), flags, mode);
  },
  flock(fd, op) {
    return launcher().mr_flock(fd, op);
  },
  mkfifo(path, mode) {
    return launcher().mr_mkfifo(Buffer.from(`${path}\0`), mode);
  },
  waitpidNoHang(pid) {
    return launcher().mr_waitpid_nohang(pid);
  },
};

/**
 * The receiving end of runc's --console-socket protocol: a unix socket that gets the pty master as SCM_RIGHTS.
 * Used by tests and by callers that want the console of a container they create.
 */
export const consoleSocket = {
  listen(path: string): number {
    return launcher().mr_console_listen(Buffer.from(`${path}\0`));
  },
  /** The pty master's fd (O_CLOEXEC), or -errno (-ETIMEDOUT). */
  receive(listenFd: number, timeoutMs: number): number {
    return launcher().mr_console_receive(listenFd, timeoutMs);
  },
};
