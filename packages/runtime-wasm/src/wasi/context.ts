import type { FdTable } from "./fd-table.ts";
import type { HostFs } from "./host-fs.ts";
import type { GuestView } from "./memory.ts";

/** What every call group needs: the fd table and a fresh view of guest memory. */
export interface WasiContext {
  readonly fds: FdTable;
  /** How path calls reach the host file system (kernel-confined when openat2 is available). */
  readonly hostFs: HostFs;
  /** A view of the current memory.buffer; take one per call, never keep it. */
  mem(): GuestView;
}

/** A preview 1 import: numbers and bigints in, errno out. */
// biome-ignore lint/suspicious/noExplicitAny: wasm passes i32 as number and i64 as bigint positionally
export type WasiFunction = (...args: any[]) => number;
export type WasiFunctions = Record<string, WasiFunction>;
