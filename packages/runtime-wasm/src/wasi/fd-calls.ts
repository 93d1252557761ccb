import {
  existsSync,
  fdatasyncSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  lstatSync,
  readdirSync,
} from "node:fs";
import { Errno, Fdflags, Filetype, PREOPENTYPE_DIR, Rights, SIZE_DIRENT, SIZE_FDSTAT } from "./constants.ts";
import type { WasiContext, WasiFunctions } from "./context.ts";
import { type DirEntry, type DirListingEntry, type FdEntry, filetypeOf } from "./fd-table.ts";
import { libc } from "./libc.ts";
import { encode } from "./memory.ts";
import { hostPathOf } from "./sandbox.ts";
import { fstatBig, setTimes, writeFilestat } from "./stat.ts";

const MAX_ADVICE = 5;
const procFds = existsSync("/proc/self/fd");

function hostFdOf(entry: FdEntry): number | undefined {
  return entry.kind === "stdio" ? entry.hostFd : entry.hostFd;
}

function listDirectory(dir: DirEntry): DirListingEntry[] {
  // Through the fd itself where /proc exists: the listing is of the directory the fd holds, wherever it is now.
  const host = procFds ? `/proc/self/fd/${dir.hostFd}` : hostPathOf(dir.location.root, dir.location.rel);
  const self = fstatSync(dir.hostFd, { bigint: true }).ino;
  // At a preopen's root ".." would describe a host directory the guest cannot reach: report "." again.
  const parent = dir.location.rel.length === 0 ? self : lstatSync(`${host}/..`, { bigint: true }).ino;
  const out: DirListingEntry[] = [
    { name: encode("."), ino: self, filetype: Filetype.DIRECTORY },
    { name: encode(".."), ino: parent, filetype: Filetype.DIRECTORY },
  ];
  const prefix = Buffer.from(`${host}/`);
  for (const name of readdirSync(host, { encoding: "buffer" })) {
    try {
      const stat = lstatSync(Buffer.concat([prefix, name]), { bigint: true });
      out.push({ name: new Uint8Array(name), ino: stat.ino, filetype: filetypeOf(stat) });
    } catch {
      // Removed between listing and stat: it is simply not part of this scan.
    }
  }
  return out;
}

export function fdCalls(ctx: WasiContext): WasiFunctions {
  return {
    fd_advise(fd: number, offset: bigint, len: bigint, advice: number): number {
      const entry = ctx.fds.get(fd, Rights.FD_ADVISE);
      if (advice < 0 || advice > MAX_ADVICE || offset < 0n || len < 0n) return Errno.INVAL;
      if (entry.kind === "dir") return Errno.BADF;
      // Advice is a hint; node:fs has no posix_fadvise, and ignoring it is always correct.
      return Errno.SUCCESS;
    },

    fd_allocate(fd: number, offset: bigint, len: bigint): number {
      const entry = ctx.fds.get(fd, Rights.FD_ALLOCATE);
      if (entry.kind !== "file") return entry.kind === "dir" ? Errno.BADF : Errno.SPIPE;
      if (offset < 0n || len <= 0n) return Errno.INVAL;
      const end = offset + len;
      if (end > BigInt(Number.MAX_SAFE_INTEGER)) return Errno.FBIG;
      // Extending with ftruncate gives posix_fallocate's visible effect (size, zero fill), not the reservation.
      if (fstatBig(entry.hostFd).size < end) ftruncateSync(entry.hostFd, Number(end));
      return Errno.SUCCESS;
    },

    fd_close(fd: number): number {
      ctx.fds.close(fd);
      return Errno.SUCCESS;
    },

    fd_datasync(fd: number): number {
      const entry = ctx.fds.get(fd, Rights.FD_DATASYNC);
      const hostFd = hostFdOf(entry);
      if (entry.kind !== "file" || hostFd === undefined) return Errno.INVAL;
      fdatasyncSync(hostFd);
      return Errno.SUCCESS;
    },

    fd_sync(fd: number): number {
      const entry = ctx.fds.get(fd, Rights.FD_SYNC);
      if (entry.kind !== "file" && entry.kind !== "dir") return Errno.INVAL;
      fsyncSync(entry.hostFd);
      return Errno.SUCCESS;
    },

    fd_fdstat_get(fd: number, ptr: number): number {
      const entry = ctx.fds.get(fd);
      const mem = ctx.mem();
      mem.slice(ptr, SIZE_FDSTAT).fill(0);
      mem.setU8(ptr, entry.filetype);
      mem.setU16(ptr + 2, entry.fdflags);
      mem.setU64(ptr + 8, entry.rightsBase);
      mem.setU64(ptr + 16, entry.rightsInheriting);
      return Errno.SUCCESS;
    },

    fd_fdstat_set_flags(fd: number, flags: number): number {
      const entry = ctx.fds.get(fd, Rights.FD_FDSTAT_SET_FLAGS);
      if ((flags & ~0x1f) !== 0) return Errno.INVAL;
      if (entry.kind === "socket") {
        // Sockets block in the host's recv/accept, so the flag must reach the host fd to mean anything
        // (for a preopened listener that is the caller's fd: the guest was handed it to use as it likes).
        const c = libc();
        if (c === null || c.setNonblocking(entry.hostFd, (flags & Fdflags.NONBLOCK) !== 0) < 0) {
          return Errno.NOTSUP;
        }
      }
      entry.fdflags = flags;
      return Errno.SUCCESS;
    },

    fd_fdstat_set_rights(fd: number, base: bigint, inheriting: bigint): number {
      const entry = ctx.fds.get(fd);
      const b = BigInt.asUintN(64, base);
      const i = BigInt.asUintN(64, inheriting);
      // Rights can only be dropped, never regained.
      if ((b & ~entry.rightsBase) !== 0n || (i & ~entry.rightsInheriting) !== 0n) return Errno.NOTCAPABLE;
      entry.rightsBase = b;
      entry.rightsInheriting = i;
      return Errno.SUCCESS;
    },

    fd_filestat_get(fd: number, ptr: number): number {
      const entry = ctx.fds.get(fd, Rights.FD_FILESTAT_GET);
      const hostFd = hostFdOf(entry);
      const mem = ctx.mem();
      if (hostFd === undefined) {
        mem.slice(ptr, 64).fill(0);
        mem.setU8(ptr + 16, entry.filetype);
        return Errno.SUCCESS;
      }
      writeFilestat(mem, ptr, fstatBig(hostFd), entry.kind === "stdio" ? undefined : entry.filetype);
      return Errno.SUCCESS;
    },

    fd_filestat_set_size(fd: number, size: bigint): number {
      const entry = ctx.fds.get(fd, Rights.FD_FILESTAT_SET_SIZE);
      if (entry.kind !== "file") return Errno.INVAL;
      if (size < 0n || size > BigInt(Number.MAX_SAFE_INTEGER)) return Errno.INVAL;
      ftruncateSync(entry.hostFd, Number(size));
      return Errno.SUCCESS;
    },

    fd_filestat_set_times(fd: number, atim: bigint, mtim: bigint, fstflags: number): number {
      const entry = ctx.fds.get(fd, Rights.FD_FILESTAT_SET_TIMES);
      if (entry.kind !== "file" && entry.kind !== "dir") return Errno.BADF;
      setTimes({ fd: entry.hostFd }, atim, mtim, fstflags);
      return Errno.SUCCESS;
    },

    fd_prestat_get(fd: number, ptr: number): number {
      const entry = ctx.fds.get(fd);
      if (entry.kind !== "dir" || entry.guestPath === undefined) return Errno.BADF;
      const mem = ctx.mem();
      mem.setU32(ptr, PREOPENTYPE_DIR);
      mem.setU32(ptr + 4, encode(entry.guestPath).length);
      return Errno.SUCCESS;
    },

    fd_prestat_dir_name(fd: number, pathPtr: number, pathLen: number): number {
      const entry = ctx.fds.get(fd);
      if (entry.kind !== "dir" || entry.guestPath === undefined) return Errno.BADF;
      const name = encode(entry.guestPath);
      if (pathLen < name.length) return Errno.NAMETOOLONG;
      ctx.mem().slice(pathPtr, name.length).set(name);
      return Errno.SUCCESS;
    },

    fd_renumber(from: number, to: number): number {
      ctx.fds.renumber(from, to);
      return Errno.SUCCESS;
    },

    fd_readdir(fd: number, buf: number, bufLen: number, cookie: bigint, bufusedPtr: number): number {
      const dir = ctx.fds.get(fd, Rights.FD_READDIR);
      if (dir.kind !== "dir") return Errno.NOTDIR;
      if (cookie === 0n || dir.listing === undefined) dir.listing = listDirectory(dir);
      const mem = ctx.mem();
      const out = mem.slice(buf, bufLen);
      let used = 0;
      // Entries are written whole while they fit, then truncated: a full buffer tells libc to call again.
      for (let index = Number(cookie); index < dir.listing.length && used < bufLen; index++) {
        const item = dir.listing[index]!;
        const header = new Uint8Array(SIZE_DIRENT);
        const hv = new DataView(header.buffer);
        hv.setBigUint64(0, BigInt(index + 1), true);
        hv.setBigUint64(8, item.ino, true);
        hv.setUint32(16, item.name.length, true);
        hv.setUint8(20, item.filetype);
        for (const part of [header, item.name]) {
          const n = Math.min(part.length, bufLen - used);
          out.set(part.subarray(0, n), used);
          used += n;
        }
      }
      mem.setU32(bufusedPtr, used);
      return Errno.SUCCESS;
    },
  };
}
