/**
 * WASI preview 1 (wasi_snapshot_preview1.witx) numeric constants. Names follow the witx spelling so they can be
 * checked against the spec line by line.
 */

export const Errno = {
  SUCCESS: 0,
  TOOBIG: 1,
  ACCES: 2,
  ADDRINUSE: 3,
  ADDRNOTAVAIL: 4,
  AFNOSUPPORT: 5,
  AGAIN: 6,
  ALREADY: 7,
  BADF: 8,
  BADMSG: 9,
  BUSY: 10,
  CANCELED: 11,
  CHILD: 12,
  CONNABORTED: 13,
  CONNREFUSED: 14,
  CONNRESET: 15,
  DEADLK: 16,
  DESTADDRREQ: 17,
  DOM: 18,
  DQUOT: 19,
  EXIST: 20,
  FAULT: 21,
  FBIG: 22,
  HOSTUNREACH: 23,
  IDRM: 24,
  ILSEQ: 25,
  INPROGRESS: 26,
  INTR: 27,
  INVAL: 28,
  IO: 29,
  ISCONN: 30,
  ISDIR: 31,
  LOOP: 32,
  MFILE: 33,
  MLINK: 34,
  MSGSIZE: 35,
  MULTIHOP: 36,
  NAMETOOLONG: 37,
  NETDOWN: 38,
  NETRESET: 39,
  NETUNREACH: 40,
  NFILE: 41,
  NOBUFS: 42,
  NODEV: 43,
  NOENT: 44,
  NOEXEC: 45,
  NOLCK: 46,
  NOLINK: 47,
  NOMEM: 48,
  NOMSG: 49,
  NOPROTOOPT: 50,
  NOSPC: 51,
  NOSYS: 52,
  NOTCONN: 53,
  NOTDIR: 54,
  NOTEMPTY: 55,
  NOTRECOVERABLE: 56,
  NOTSOCK: 57,
  NOTSUP: 58,
  NOTTY: 59,
  NXIO: 60,
  OVERFLOW: 61,
  OWNERDEAD: 62,
  PERM: 63,
  PIPE: 64,
  PROTO: 65,
  PROTONOSUPPORT: 66,
  PROTOTYPE: 67,
  RANGE: 68,
  ROFS: 69,
  SPIPE: 70,
  SRCH: 71,
  STALE: 72,
  TIMEDOUT: 73,
  TXTBSY: 74,
  XDEV: 75,
  NOTCAPABLE: 76,
} as const;

/** Rights are a 64-bit set; bigint keeps every bit exact. */
export const Rights = {
  FD_DATASYNC: 1n << 0n,
  FD_READ: 1n << 1n,
  FD_SEEK: 1n << 2n,
  FD_FDSTAT_SET_FLAGS: 1n << 3n,
  FD_SYNC: 1n << 4n,
  FD_TELL: 1n << 5n,
  FD_WRITE: 1n << 6n,
  FD_ADVISE: 1n << 7n,
  FD_ALLOCATE: 1n << 8n,
  PATH_CREATE_DIRECTORY: 1n << 9n,
  PATH_CREATE_FILE: 1n << 10n,
  PATH_LINK_SOURCE: 1n << 11n,
  PATH_LINK_TARGET: 1n << 12n,
  PATH_OPEN: 1n << 13n,
  FD_READDIR: 1n << 14n,
  PATH_READLINK: 1n << 15n,
  PATH_RENAME_SOURCE: 1n << 16n,
  PATH_RENAME_TARGET: 1n << 17n,
  PATH_FILESTAT_GET: 1n << 18n,
  PATH_FILESTAT_SET_SIZE: 1n << 19n,
  PATH_FILESTAT_SET_TIMES: 1n << 20n,
  FD_FILESTAT_GET: 1n << 21n,
  FD_FILESTAT_SET_SIZE: 1n << 22n,
  FD_FILESTAT_SET_TIMES: 1n << 23n,
  PATH_SYMLINK: 1n << 24n,
  PATH_REMOVE_DIRECTORY: 1n << 25n,
  PATH_UNLINK_FILE: 1n << 26n,
  POLL_FD_READWRITE: 1n << 27n,
  SOCK_SHUTDOWN: 1n << 28n,
  SOCK_ACCEPT: 1n << 29n,
} as const;

const R = Rights;

/** Every right defined by preview 1. */
export const RIGHTS_ALL = (1n << 30n) - 1n;

/** Rights meaningful on a regular file. */
export const RIGHTS_FILE =
  R.FD_DATASYNC |
  R.FD_READ |
  R.FD_SEEK |
  R.FD_FDSTAT_SET_FLAGS |
  R.FD_SYNC |
  R.FD_TELL |
  R.FD_WRITE |
  R.FD_ADVISE |
  R.FD_ALLOCATE |
  R.FD_FILESTAT_GET |
  R.FD_FILESTAT_SET_SIZE |
  R.FD_FILESTAT_SET_TIMES |
  R.POLL_FD_READWRITE;

/** Rights meaningful on a directory. */
export const RIGHTS_DIR =
  R.FD_FDSTAT_SET_FLAGS |
  R.FD_SYNC |
  R.FD_ADVISE |
  R.PATH_CREATE_DIRECTORY |
  R.PATH_CREATE_FILE |
  R.PATH_LINK_SOURCE |
  R.PATH_LINK_TARGET |
  R.PATH_OPEN |
  R.FD_READDIR |
  R.PATH_READLINK |
  R.PATH_RENAME_SOURCE |
  R.PATH_RENAME_TARGET |
  R.PATH_FILESTAT_GET |
  R.PATH_FILESTAT_SET_SIZE |
  R.PATH_FILESTAT_SET_TIMES |
  R.FD_FILESTAT_GET |
  R.FD_FILESTAT_SET_TIMES |
  R.PATH_SYMLINK |
  R.PATH_REMOVE_DIRECTORY |
  R.PATH_UNLINK_FILE;

/** Rights that change the file system; a read-only preopen never grants them, directly or by inheritance. */
export const RIGHTS_MUTATING =
  R.FD_DATASYNC |
  R.FD_WRITE |
  R.FD_ALLOCATE |
  R.PATH_CREATE_DIRECTORY |
  R.PATH_CREATE_FILE |
  R.PATH_LINK_SOURCE |
  R.PATH_LINK_TARGET |
  R.PATH_RENAME_SOURCE |
  R.PATH_RENAME_TARGET |
  R.PATH_FILESTAT_SET_SIZE |
  R.PATH_FILESTAT_SET_TIMES |
  R.FD_FILESTAT_SET_SIZE |
  R.FD_FILESTAT_SET_TIMES |
  R.PATH_SYMLINK |
  R.PATH_REMOVE_DIRECTORY |
  R.PATH_UNLINK_FILE;

export const RIGHTS_SOCKET =
  R.FD_READ | R.FD_WRITE | R.FD_FDSTAT_SET_FLAGS | R.FD_FILESTAT_GET | R.POLL_FD_READWRITE | R.SOCK_SHUTDOWN;

export const RIGHTS_LISTENER =
  R.FD_FDSTAT_SET_FLAGS | R.FD_FILESTAT_GET | R.POLL_FD_READWRITE | R.SOCK_ACCEPT;

export const Filetype = {
  UNKNOWN: 0,
  BLOCK_DEVICE: 1,
  CHARACTER_DEVICE: 2,
  DIRECTORY: 3,
  REGULAR_FILE: 4,
  SOCKET_DGRAM: 5,
  SOCKET_STREAM: 6,
  SYMBOLIC_LINK: 7,
} as const;

export const Oflags = { CREAT: 1, DIRECTORY: 2, EXCL: 4, TRUNC: 8 } as const;
export const Fdflags = { APPEND: 1, DSYNC: 2, NONBLOCK: 4, RSYNC: 8, SYNC: 16 } as const;
export const Lookupflags = { SYMLINK_FOLLOW: 1 } as const;
export const Fstflags = { ATIM: 1, ATIM_NOW: 2, MTIM: 4, MTIM_NOW: 8 } as const;
export const Whence = { SET: 0, CUR: 1, END: 2 } as const;
export const ClockId = { REALTIME: 0, MONOTONIC: 1, PROCESS_CPUTIME_ID: 2, THREAD_CPUTIME_ID: 3 } as const;
export const Eventtype = { CLOCK: 0, FD_READ: 1, FD_WRITE: 2 } as const;
export const Eventrwflags = { FD_READWRITE_HANGUP: 1 } as const;
export const Subclockflags = { SUBSCRIPTION_CLOCK_ABSTIME: 1 } as const;
export const Riflags = { RECV_PEEK: 1, RECV_WAITALL: 2 } as const;
export const Roflags = { RECV_DATA_TRUNCATED: 1 } as const;
export const Sdflags = { RD: 1, WR: 2 } as const;
export const PREOPENTYPE_DIR = 0;

/** Struct sizes of the preview 1 ABI (wasm32). */
export const SIZE_FILESTAT = 64;
export const SIZE_FDSTAT = 24;
export const SIZE_DIRENT = 24;
export const SIZE_SUBSCRIPTION = 48;
export const SIZE_EVENT = 32;
export const SIZE_IOVEC = 8;
