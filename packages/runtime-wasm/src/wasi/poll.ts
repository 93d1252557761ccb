import { clockNow, clockResolution, type WasiClock } from "./clock.ts";
import {
  Errno,
  Eventrwflags,
  Eventtype,
  Rights,
  SIZE_EVENT,
  SIZE_SUBSCRIPTION,
  Subclockflags,
} from "./constants.ts";
import type { WasiContext, WasiFunctions } from "./context.ts";
import { errnoOf } from "./errors.ts";
import type { FdEntry } from "./fd-table.ts";
import { libc, POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT } from "./libc.ts";
import type { GuestView } from "./memory.ts";
import { fstatBig } from "./stat.ts";

interface PollEvent {
  userdata: bigint;
  error: number;
  type: number;
  nbytes: bigint;
  flags: number;
}

interface ClockWait {
  userdata: bigint;
  /** ns left until it fires, measured when poll_oneoff was entered. */
  remaining: bigint;
}

interface HostWait {
  userdata: bigint;
  type: number;
  hostFd: number;
}

function writeEvent(mem: GuestView, ptr: number, ev: PollEvent): void {
  mem.slice(ptr, SIZE_EVENT).fill(0);
  mem.setU64(ptr, ev.userdata);
  mem.setU16(ptr + 8, ev.error);
  mem.setU8(ptr + 10, ev.type);
  mem.setU64(ptr + 16, ev.nbytes);
  mem.setU16(ptr + 24, ev.flags);
}

/** Readiness that needs no waiting: files are always ready, absent stdio streams are at EOF/discard. */
function immediateReadiness(
  entry: FdEntry,
  type: number,
): { nbytes: bigint; flags: number } | "host" | number {
  switch (entry.kind) {
    case "file": {
      if (type === Eventtype.FD_WRITE) return { nbytes: 0n, flags: 0 };
      const size = fstatBig(entry.hostFd).size;
      const left = size - BigInt(entry.position);
      return { nbytes: left > 0n ? left : 0n, flags: 0 };
    }
    case "dir":
      return Errno.BADF;
    case "stdio":
      if (entry.hostFd !== undefined) return "host";
      return type === Eventtype.FD_READ
        ? { nbytes: 0n, flags: Eventrwflags.FD_READWRITE_HANGUP }
        : { nbytes: 0n, flags: 0 };
    case "socket":
      return "host";
  }
}

/** poll(2) over host fds; without libc the fds are reported ready and the guest's next read/write decides. */
function pollHost(waits: HostWait[], timeoutMs: number): PollEvent[] {
  const c = libc();
  if (c === null) {
    return waits.map((w) => ({ userdata: w.userdata, error: 0, type: w.type, nbytes: 0n, flags: 0 }));
  }
  const fds = new Uint8Array(8 * waits.length);
  const view = new DataView(fds.buffer);
  waits.forEach((w, i) => {
    view.setInt32(i * 8, w.hostFd, true);
    view.setInt16(i * 8 + 4, w.type === Eventtype.FD_READ ? POLLIN : POLLOUT, true);
  });
  const rc = c.poll(fds, waits.length, timeoutMs);
  if (rc <= 0) return [];
  const out: PollEvent[] = [];
  waits.forEach((w, i) => {
    const revents = view.getInt16(i * 8 + 6, true);
    if (revents === 0) return;
    const error = revents & POLLNVAL ? Errno.BADF : 0;
    const flags = revents & (POLLHUP | POLLERR) ? Eventrwflags.FD_READWRITE_HANGUP : 0;
    const pending = w.type === Eventtype.FD_READ ? c.fionread(w.hostFd) : 0;
    const nbytes = BigInt(Math.max(pending, 0));
    out.push({ userdata: w.userdata, error, type: w.type, nbytes, flags });
  });
  return out;
}

export function pollCalls(ctx: WasiContext, clock: WasiClock): WasiFunctions {
  return {
    poll_oneoff(inPtr: number, outPtr: number, nsubscriptions: number, neventsPtr: number): number {
      if (nsubscriptions === 0) return Errno.INVAL;
      const mem = ctx.mem();
      const ready: PollEvent[] = [];
      const clocks: ClockWait[] = [];
      const hostWaits: HostWait[] = [];
      for (let i = 0; i < nsubscriptions; i++) {
        const sub = inPtr + i * SIZE_SUBSCRIPTION;
        const userdata = mem.u64(sub);
        const type = mem.u8(sub + 8);
        const none = { userdata, type, nbytes: 0n, flags: 0 };
        if (type === Eventtype.CLOCK) {
          const id = mem.u32(sub + 16);
          const timeout = mem.u64(sub + 24);
          const absolute = (mem.u16(sub + 40) & Subclockflags.SUBSCRIPTION_CLOCK_ABSTIME) !== 0;
          try {
            // Relative timeouts never read the clock, so an unknown id would otherwise go unnoticed.
            clockResolution(id);
            const remaining = absolute ? timeout - clockNow(clock, id) : timeout;
            clocks.push({ userdata, remaining });
          } catch (err) {
            const errno = errnoOf(err);
            if (errno === undefined) throw err;
            ready.push({ ...none, error: errno });
          }
        } else if (type === Eventtype.FD_READ || type === Eventtype.FD_WRITE) {
          const fd = mem.u32(sub + 16);
          try {
            const entry = ctx.fds.get(fd, Rights.POLL_FD_READWRITE);
            const state = immediateReadiness(entry, type);
            if (state === "host") hostWaits.push({ userdata, type, hostFd: entry.hostFd! });
            else if (typeof state === "number") ready.push({ ...none, error: state });
            else ready.push({ ...none, error: 0, ...state });
          } catch (err) {
            const errno = errnoOf(err);
            if (errno === undefined) throw err;
            ready.push({ ...none, error: errno });
          }
        } else {
          return Errno.INVAL;
        }
      }

      const nextClock = clocks.reduce<bigint | null>(
        (min, c) => (min === null || c.remaining < min ? c.remaining : min),
        null,
      );
      const mustReturnNow = ready.length > 0 || (nextClock !== null && nextClock <= 0n);
      if (hostWaits.length > 0) {
        const timeoutMs = mustReturnNow ? 0 : nextClock === null ? -1 : Math.ceil(Number(nextClock) / 1e6);
        const started = clock.monotonic();
        ready.push(...pollHost(hostWaits, timeoutMs));
        const elapsed = clock.monotonic() - started;
        for (const c of clocks) {
          if (c.remaining <= elapsed)
            ready.push({ userdata: c.userdata, error: 0, type: 0, nbytes: 0n, flags: 0 });
        }
      } else if (ready.length === 0 && nextClock !== null) {
        clock.sleep(nextClock);
        for (const c of clocks) {
          if (c.remaining <= nextClock)
            ready.push({ userdata: c.userdata, error: 0, type: 0, nbytes: 0n, flags: 0 });
        }
      } else if (nextClock !== null) {
        for (const c of clocks) {
          if (c.remaining <= 0n)
            ready.push({ userdata: c.userdata, error: 0, type: 0, nbytes: 0n, flags: 0 });
        }
      }

      const out = ctx.mem();
      ready.forEach((ev, i) => {
        writeEvent(out, outPtr + i * SIZE_EVENT, ev);
      });
      out.setU32(neventsPtr, ready.length);
      return Errno.SUCCESS;
    },
  };
}
