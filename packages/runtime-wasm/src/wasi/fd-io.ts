import { readSync, writeSync } from "node:fs";
import { Errno, Fdflags, Rights, Whence } from "./constants.ts";
import type { WasiContext, WasiFunctions } from "./context.ts";
import { fail } from "./errors.ts";
import type { FdEntry } from "./fd-table.ts";
import { fstatBig } from "./stat.ts";

const pause = new Int32Array(new SharedArrayBuffer(4));

/** Writes all of `data` to a host fd, waiting out EAGAIN on non-blocking pipes the host handed us. */
export function writeAllToHost(hostFd: number, data: Uint8Array): void {
  let done = 0;
  while (done < data.length) {
    try {
      done += writeSync(hostFd, data, done, data.length - done);
    } catch (err) {
      if ((err as { code?: string }).code !== "EAGAIN") throw err;
      Atomics.wait(pause, 0, 0, 1);
    }
  }
}

function concat(buffers: Uint8Array[]): Uint8Array {
  const total = buffers.reduce((n, b) => n + b.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const b of buffers) {
    out.set(b, at);
    at += b.length;
  }
  return out;
}

/** Reads into the buffers in order; stops at the first short read, as readv does. */
function readInto(hostFd: number, buffers: Uint8Array[], position: number | null): number {
  let total = 0;
  for (const buf of buffers) {
    if (buf.length === 0) continue;
    const n = readSync(hostFd, buf, 0, buf.length, position === null ? null : position + total);
    total += n;
    if (n < buf.length) break;
  }
  return total;
}

function writeFrom(hostFd: number, buffers: Uint8Array[], position: number | null): number {
  let total = 0;
  for (const buf of buffers) {
    if (buf.length === 0) continue;
    const n = writeSync(hostFd, buf, 0, buf.length, position === null ? null : position + total);
    total += n;
    if (n < buf.length) break;
  }
  return total;
}

function readEntry(entry: FdEntry, buffers: Uint8Array[]): number {
  switch (entry.kind) {
    case "file": {
      const n = readInto(entry.hostFd, buffers, entry.position);
      entry.position += n;
      return n;
    }
    case "stdio":
      return entry.hostFd === undefined ? 0 : readInto(entry.hostFd, buffers, null);
    case "socket":
      return readInto(entry.hostFd, buffers, null);
    case "dir":
      return fail(Errno.ISDIR);
  }
}

function writeEntry(entry: FdEntry, buffers: Uint8Array[]): number {
  switch (entry.kind) {
    case "file": {
      // fd_fdstat_set_flags may turn APPEND on after open, when the host fd lacks O_APPEND: place writes at the end.
      if ((entry.fdflags & Fdflags.APPEND) !== 0) entry.position = Number(fstatBig(entry.hostFd).size);
      const n = writeFrom(entry.hostFd, buffers, entry.position);
      entry.position += n;
      return n;
    }
    case "stdio": {
      const data = concat(buffers);
      if (entry.sink !== undefined) entry.sink(data);
      else if (entry.hostFd !== undefined) writeAllToHost(entry.hostFd, data);
      return data.length;
    }
    case "socket":
      return writeFrom(entry.hostFd, buffers, null);
    case "dir":
      return fail(Errno.ISDIR);
  }
}

function positioned(entry: FdEntry): FdEntry & { kind: "file" } {
  if (entry.kind === "dir") fail(Errno.ISDIR);
  if (entry.kind !== "file") fail(Errno.SPIPE);
  return entry;
}

function offsetArg(offset: bigint): number {
  // i64 arrives signed; offsets past 2^53 cannot be addressed through node:fs anyway.
  if (offset < 0n || offset > BigInt(Number.MAX_SAFE_INTEGER)) fail(Errno.INVAL);
  return Number(offset);
}

export function fdIoCalls(ctx: WasiContext): WasiFunctions {
  return {
    fd_read(fd: number, iovs: number, iovsLen: number, nreadPtr: number): number {
      const entry = ctx.fds.get(fd, Rights.FD_READ);
      const mem = ctx.mem();
      mem.setU32(nreadPtr, readEntry(entry, mem.iovecs(iovs, iovsLen)));
      return Errno.SUCCESS;
    },

    fd_write(fd: number, iovs: number, iovsLen: number, nwrittenPtr: number): number {
      const entry = ctx.fds.get(fd, Rights.FD_WRITE);
      const mem = ctx.mem();
      mem.setU32(nwrittenPtr, writeEntry(entry, mem.iovecs(iovs, iovsLen)));
      return Errno.SUCCESS;
    },

    fd_pread(fd: number, iovs: number, iovsLen: number, offset: bigint, nreadPtr: number): number {
      const entry = positioned(ctx.fds.get(fd, Rights.FD_READ | Rights.FD_SEEK));
      const mem = ctx.mem();
      mem.setU32(nreadPtr, readInto(entry.hostFd, mem.iovecs(iovs, iovsLen), offsetArg(offset)));
      return Errno.SUCCESS;
    },

    fd_pwrite(fd: number, iovs: number, iovsLen: number, offset: bigint, nwrittenPtr: number): number {
      const entry = positioned(ctx.fds.get(fd, Rights.FD_WRITE | Rights.FD_SEEK));
      const mem = ctx.mem();
      mem.setU32(nwrittenPtr, writeFrom(entry.hostFd, mem.iovecs(iovs, iovsLen), offsetArg(offset)));
      return Errno.SUCCESS;
    },

    fd_seek(fd: number, offset: bigint, whence: number, newOffsetPtr: number): number {
      const tellOnly = offset === 0n && whence === Whence.CUR;
      const entry = positioned(ctx.fds.get(fd, tellOnly ? Rights.FD_TELL : Rights.FD_SEEK));
      let base: bigint;
      if (whence === Whence.SET) base = 0n;
      else if (whence === Whence.CUR) base = BigInt(entry.position);
      else if (whence === Whence.END) base = fstatBig(entry.hostFd).size;
      else return Errno.INVAL;
      const target = base + offset;
      if (target < 0n || target > BigInt(Number.MAX_SAFE_INTEGER)) return Errno.INVAL;
      entry.position = Number(target);
      ctx.mem().setU64(newOffsetPtr, target);
      return Errno.SUCCESS;
    },

    fd_tell(fd: number, offsetPtr: number): number {
      const entry = positioned(ctx.fds.get(fd, Rights.FD_TELL));
      ctx.mem().setU64(offsetPtr, entry.position);
      return Errno.SUCCESS;
    },
  };
}
