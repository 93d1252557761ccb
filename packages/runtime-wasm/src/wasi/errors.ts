import { Errno } from "./constants.ts";

/** Thrown inside a WASI call to return `errno` to the guest; never escapes the import wrapper. */
export class WasiError extends Error {
  override readonly name = "WasiError";
  readonly errno: number;
  constructor(errno: number, message = `WASI errno ${errno}`) {
    super(message);
    this.errno = errno;
  }
}

/** proc_exit unwinds the guest with this; `Wasi.start` turns it into the exit code. */
export class WasiExit extends Error {
  override readonly name = "WasiExit";
  readonly code: number;
  constructor(code: number) {
    super(`WASI exit ${code}`);
    this.code = code;
  }
}

/** Host (Node/libc) error names to preview 1 errno. Only names the host can actually report are listed. */
const HOST_ERRNO: Record<string, number> = {
  E2BIG: Errno.TOOBIG,
  EACCES: Errno.ACCES,
  EADDRINUSE: Errno.ADDRINUSE,
  EADDRNOTAVAIL: Errno.ADDRNOTAVAIL,
  EAFNOSUPPORT: Errno.AFNOSUPPORT,
  EAGAIN: Errno.AGAIN,
  EWOULDBLOCK: Errno.AGAIN,
  EALREADY: Errno.ALREADY,
  EBADF: Errno.BADF,
  EBUSY: Errno.BUSY,
  ECANCELED: Errno.CANCELED,
  ECONNABORTED: Errno.CONNABORTED,
  ECONNREFUSED: Errno.CONNREFUSED,
  ECONNRESET: Errno.CONNRESET,
  EDQUOT: Errno.DQUOT,
  EEXIST: Errno.EXIST,
  EFAULT: Errno.FAULT,
  EFBIG: Errno.FBIG,
  EHOSTUNREACH: Errno.HOSTUNREACH,
  EILSEQ: Errno.ILSEQ,
  EINPROGRESS: Errno.INPROGRESS,
  EINTR: Errno.INTR,
  EINVAL: Errno.INVAL,
  EIO: Errno.IO,
  EISCONN: Errno.ISCONN,
  EISDIR: Errno.ISDIR,
  ELOOP: Errno.LOOP,
  EMFILE: Errno.MFILE,
  EMLINK: Errno.MLINK,
  EMSGSIZE: Errno.MSGSIZE,
  ENAMETOOLONG: Errno.NAMETOOLONG,
  ENETDOWN: Errno.NETDOWN,
  ENETRESET: Errno.NETRESET,
  ENETUNREACH: Errno.NETUNREACH,
  ENFILE: Errno.NFILE,
  ENOBUFS: Errno.NOBUFS,
  ENODEV: Errno.NODEV,
  ENOENT: Errno.NOENT,
  ENOMEM: Errno.NOMEM,
  ENOSPC: Errno.NOSPC,
  ENOSYS: Errno.NOSYS,
  ENOTCONN: Errno.NOTCONN,
  ENOTDIR: Errno.NOTDIR,
  ENOTEMPTY: Errno.NOTEMPTY,
  ENOTSOCK: Errno.NOTSOCK,
  ENOTSUP: Errno.NOTSUP,
  EOPNOTSUPP: Errno.NOTSUP,
  ENOTTY: Errno.NOTTY,
  ENXIO: Errno.NXIO,
  EOVERFLOW: Errno.OVERFLOW,
  EPERM: Errno.PERM,
  EPIPE: Errno.PIPE,
  ERANGE: Errno.RANGE,
  EROFS: Errno.ROFS,
  ESPIPE: Errno.SPIPE,
  ETIMEDOUT: Errno.TIMEDOUT,
  ETXTBSY: Errno.TXTBSY,
  EXDEV: Errno.XDEV,
};

/**
 * The errno to hand the guest for an exception thrown during a call, or undefined when the exception is a bug
 * (or a WasiExit) and must propagate.
 */
export function errnoOf(err: unknown): number | undefined {
  if (err instanceof WasiError) return err.errno;
  if (err instanceof WasiExit) return undefined;
  // Guest pointers past the end of memory make DataView/TypedArray throw RangeError.
  if (err instanceof RangeError) return Errno.FAULT;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === "string") return errnoFromHostCode(code);
  return undefined;
}

/** The preview 1 errno for a host error name such as "ENOENT"; unknown names are EIO. */
export function errnoFromHostCode(code: string): number {
  return HOST_ERRNO[code] ?? Errno.IO;
}

export function fail(errno: number): never {
  throw new WasiError(errno);
}
