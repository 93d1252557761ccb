import { cc, dlopen, FFIType } from "bun:ffi";
import { MagikError } from "@magikrun/spec/errors";
import { buildLauncher, LAUNCHER_LIBRARY, LAUNCHER_SOURCE, launcherIsFresh } from "./launcher-build.ts";

const SYMBOLS = {
  mr_launch: {
    args: [
      FFIType.ptr,
      FFIType.u64,
      FFIType.i64,
      FFIType.ptr,
      FFIType.i32,
      FFIType.ptr,
      FFIType.ptr,
      FFIType.i32,
    ],
    returns: FFIType.i32,
  },
  mr_read_timeout: { args: [FFIType.i32, FFIType.ptr, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  mr_pipe: { args: [FFIType.ptr], returns: FFIType.i32 },
  mr_flock: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  mr_waitpid_nohang: { args: [FFIType.i32], returns: FFIType.i32 },
  mr_close: { args: [FFIType.i32], returns: FFIType.i32 },
  mr_open: { args: [FFIType.ptr, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  mr_write: { args: [FFIType.i32, FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
  mr_mkfifo: { args: [FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
  mr_console_listen: { args: [FFIType.ptr], returns: FFIType.i32 },
  mr_console_receive: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
} as const;

type LauncherSymbols = ReturnType<typeof dlopen<typeof SYMBOLS>>["symbols"];

let loaded: LauncherSymbols | undefined;

/**
 * The launcher's functions. The .so is built at install time; when it is missing or older than its source it is
 * rebuilt with the system compiler, and without one compiled in memory by bun:ffi's TinyCC (slower per process).
 */
export function launcher(): LauncherSymbols {
  if (loaded) return loaded;
  // MAGIKRUN_LAUNCHER_CC=1 forces the TinyCC path, to test the fallback on a machine that has gcc.
  const forceCc = process.env.MAGIKRUN_LAUNCHER_CC === "1";
  if (!forceCc && !launcherIsFresh()) buildLauncher();
  try {
    loaded =
      !forceCc && launcherIsFresh()
        ? dlopen(LAUNCHER_LIBRARY, SYMBOLS).symbols
        : cc({ source: LAUNCHER_SOURCE, symbols: SYMBOLS }).symbols;
  } catch (err) {
    throw new MagikError("RuntimeUnavailable", `cannot load the native launcher: ${(err as Error).message}`, {
      cause: err,
      details: { library: LAUNCHER_LIBRARY, source: LAUNCHER_SOURCE },
      hint: "Install gcc (or any cc) and run `bun packages/runtime-native/scripts/build-launcher.ts`.",
    });
  }
  return loaded;
}
