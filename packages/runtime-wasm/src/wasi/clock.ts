import { ClockId, Errno } from "./constants.ts";
import { fail } from "./errors.ts";

/** Time sources; tests replace them to make clock and poll results exact. */
export interface WasiClock {
  /** Wall-clock time, ns since the Unix epoch. */
  realtime(): bigint;
  /** Monotonic time, ns from an arbitrary origin. */
  monotonic(): bigint;
  /** CPU time consumed by the process, ns. */
  cputime(): bigint;
  /** Blocks the calling thread for `ns` (a Worker may block; that is what poll_oneoff asks for). */
  sleep(ns: bigint): void;
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

export const hostClock: WasiClock = {
  realtime: () => BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000)) * 1000n,
  monotonic: () => process.hrtime.bigint(),
  cputime: () => {
    const usage = process.cpuUsage();
    return BigInt(usage.user + usage.system) * 1000n;
  },
  sleep: (ns) => {
    if (ns <= 0n) return;
    Atomics.wait(sleeper, 0, 0, Number(ns) / 1e6);
  },
};

/** Resolution the host clocks actually have: µs wall clock, ns monotonic, µs from getrusage. */
export function clockResolution(id: number): bigint {
  switch (id) {
    case ClockId.REALTIME:
      return 1000n;
    case ClockId.MONOTONIC:
      return 1n;
    case ClockId.PROCESS_CPUTIME_ID:
    case ClockId.THREAD_CPUTIME_ID:
      return 1000n;
    default:
      return fail(Errno.INVAL);
  }
}

/** The current time of clock `id`. Thread CPU time is the process's: a wasm instance runs on one thread. */
export function clockNow(clock: WasiClock, id: number): bigint {
  switch (id) {
    case ClockId.REALTIME:
      return clock.realtime();
    case ClockId.MONOTONIC:
      return clock.monotonic();
    case ClockId.PROCESS_CPUTIME_ID:
    case ClockId.THREAD_CPUTIME_ID:
      return clock.cputime();
    default:
      return fail(Errno.INVAL);
  }
}
