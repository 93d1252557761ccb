export { hostClock, type WasiClock } from "./clock.ts";
export { ClockId, Errno, Filetype, Rights } from "./constants.ts";
export { WasiError, WasiExit } from "./errors.ts";
export type { StdioSink } from "./fd-table.ts";
export type { WasiOptions, WasiPreopenDir } from "./options.ts";
export { Wasi } from "./wasi.ts";
