/**
 * WASI preview 1 (wasi_snapshot_preview1), implemented by the project for the wasm runtime's Workers.
 *
 * - fds 0-2 are stdio (caller-owned host fds, sinks, or an empty stdin), 3.. the preopened directories in
 *   order, then preopened listening sockets, then whatever the guest opens (lowest free number first).
 * - Rights: per-fd base and inheriting sets; read-only preopens never grant mutating rights, and
 *   fd_fdstat_set_rights only narrows. path_open drops requested rights the directory cannot hand on.
 * - Sandbox: every directory fd is a root of its own. Paths are walked component by component; "..", absolute
 *   paths and symlinks that would leave the root fail with EPERM, as wasmtime reports them, and more than 40
 *   symlink expansions with ELOOP. Where openat2(2) exists the kernel enforces the same confinement
 *   (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), which also defeats races with other writers of the directory.
 */
export { hostClock, type WasiClock } from "./clock.ts";
export { ClockId, Errno, Filetype, Rights } from "./constants.ts";
export { WasiError, WasiExit } from "./errors.ts";
export type { StdioSink } from "./fd-table.ts";
export type { WasiOptions, WasiPreopenDir } from "./options.ts";
export { Wasi } from "./wasi.ts";
