import type { WasiClock } from "./clock.ts";
import type { StdioSink } from "./fd-table.ts";

export interface WasiPreopenDir {
  /** Name the guest sees (fd_prestat_dir_name), e.g. "/" or "/data". */
  guestPath: string;
  /** Host directory it maps to; nothing outside it is reachable through this fd. */
  hostPath: string;
  /** Read-only: the fd and everything opened through it lack every mutating right. */
  readonly?: boolean;
}

export interface WasiOptions {
  args: string[];
  /** "KEY=VALUE" strings, in the order the guest will see them. */
  env: string[];
  /** Directories given fds 3, 4, ... in this order. */
  preopens: WasiPreopenDir[];
  /** Host fd to read (caller keeps ownership) or "ignore" (EOF). Default "ignore". */
  stdin?: number | "ignore";
  /** Host fd (caller keeps ownership) or a sink receiving a copy of each write. Default host fd 1. */
  stdout?: number | StdioSink;
  /** Like stdout. Default host fd 2. */
  stderr?: number | StdioSink;
  /**
   * Host fds of listening stream sockets, given fds right after the preopened directories. The caller keeps
   * ownership; the guest can sock_accept on them.
   */
  sockets?: number[];
  /** Time sources; defaults to the host's clocks. */
  clock?: WasiClock;
  /**
   * How path calls are kept inside preopens. "openat2": the kernel enforces it (RESOLVE_BENEATH, no symlinks),
   * which also closes races with other writers; construction fails where that is unavailable. "paths": the
   * runtime's own walk plus node:fs on full paths. "auto" (default): openat2 when available.
   */
  confinement?: "auto" | "openat2" | "paths";
  /** Most fds open at once (ENFILE beyond). Default 1024. */
  maxFds?: number;
}
