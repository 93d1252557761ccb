import { Errno, Fdflags, Filetype, RIGHTS_SOCKET, Riflags, Rights, Sdflags } from "./constants.ts";
import type { WasiContext, WasiFunctions } from "./context.ts";
import { fail } from "./errors.ts";
import type { SocketEntry } from "./fd-table.ts";
import {
  type Libc,
  libc,
  MSG_NOSIGNAL,
  MSG_PEEK,
  MSG_WAITALL,
  SOCK_NONBLOCK,
  wasiErrnoFromLinux,
} from "./libc.ts";

function socketOf(ctx: WasiContext, fd: number, needed: bigint): SocketEntry {
  const entry = ctx.fds.get(fd);
  if (entry.kind !== "socket") fail(Errno.NOTSOCK);
  if ((entry.rightsBase & needed) !== needed) fail(Errno.NOTCAPABLE);
  return entry;
}

function needLibc(): Libc {
  return libc() ?? fail(Errno.NOTSUP);
}

/** A libc result, or the guest-visible errno of its failure. */
function check(c: Libc, rc: number): number {
  if (rc >= 0) return rc;
  return fail(wasiErrnoFromLinux(c.errno()));
}

/**
 * Sockets exist only when the host hands a listening socket in (preview 1 cannot create them); everything here
 * works on those and on what sock_accept returns from them.
 */
export function sockCalls(ctx: WasiContext): WasiFunctions {
  return {
    sock_accept(fd: number, flags: number, fdPtr: number): number {
      const listener = socketOf(ctx, fd, Rights.SOCK_ACCEPT);
      if ((flags & ~Fdflags.NONBLOCK) !== 0) return Errno.INVAL;
      const c = needLibc();
      const hostFd = check(c, c.accept4(listener.hostFd, flags & Fdflags.NONBLOCK ? SOCK_NONBLOCK : 0));
      const newFd = ctx.fds.add({
        kind: "socket",
        hostFd,
        owned: true,
        filetype: Filetype.SOCKET_STREAM,
        rightsBase: RIGHTS_SOCKET,
        rightsInheriting: 0n,
        fdflags: flags,
      });
      ctx.mem().setU32(fdPtr, newFd);
      return Errno.SUCCESS;
    },

    sock_recv(
      fd: number,
      riData: number,
      riDataLen: number,
      riFlags: number,
      roDataLenPtr: number,
      roFlagsPtr: number,
    ): number {
      const sock = socketOf(ctx, fd, Rights.FD_READ);
      if ((riFlags & ~(Riflags.RECV_PEEK | Riflags.RECV_WAITALL)) !== 0) return Errno.INVAL;
      const c = needLibc();
      const buffers = ctx.mem().iovecs(riData, riDataLen);
      const total = buffers.reduce((n, b) => n + b.length, 0);
      const staging = new Uint8Array(total);
      let hostFlags = 0;
      if (riFlags & Riflags.RECV_PEEK) hostFlags |= MSG_PEEK;
      if (riFlags & Riflags.RECV_WAITALL) hostFlags |= MSG_WAITALL;
      const n = total === 0 ? 0 : check(c, c.recv(sock.hostFd, staging, total, hostFlags));
      // Guest memory is re-read after the blocking call; the buffers list is re-derived from it.
      const mem = ctx.mem();
      let at = 0;
      for (const buf of mem.iovecs(riData, riDataLen)) {
        if (at >= n) break;
        const k = Math.min(buf.length, n - at);
        buf.set(staging.subarray(at, at + k));
        at += k;
      }
      mem.setU32(roDataLenPtr, n);
      mem.setU16(roFlagsPtr, 0);
      return Errno.SUCCESS;
    },

    sock_send(fd: number, siData: number, siDataLen: number, _siFlags: number, soDataLenPtr: number): number {
      const sock = socketOf(ctx, fd, Rights.FD_WRITE);
      const c = needLibc();
      const buffers = ctx.mem().iovecs(siData, siDataLen);
      const total = buffers.reduce((n, b) => n + b.length, 0);
      const data = new Uint8Array(total);
      let at = 0;
      for (const b of buffers) {
        data.set(b, at);
        at += b.length;
      }
      // MSG_NOSIGNAL: a closed peer is EPIPE for the guest, not SIGPIPE for the whole host process.
      const n = total === 0 ? 0 : check(c, c.send(sock.hostFd, data, total, MSG_NOSIGNAL));
      ctx.mem().setU32(soDataLenPtr, n);
      return Errno.SUCCESS;
    },

    sock_shutdown(fd: number, how: number): number {
      const sock = socketOf(ctx, fd, Rights.SOCK_SHUTDOWN);
      const both = Sdflags.RD | Sdflags.WR;
      if (how === 0 || (how & ~both) !== 0) return Errno.INVAL;
      const c = needLibc();
      const hostHow = how === both ? 2 : how === Sdflags.WR ? 1 : 0;
      check(c, c.shutdown(sock.hostFd, hostHow));
      return Errno.SUCCESS;
    },
  };
}
