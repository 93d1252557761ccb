#!/usr/bin/env bun
/**
 * Builds the native launcher (native/launcher.c) into native/launcher.so with the system C compiler. Run from the
 * package's postinstall; the loader (src/launcher-lib.ts) also calls it when the .so is missing or stale.
 */
import { buildLauncher } from "../src/launcher-build.ts";

const result = buildLauncher();
if (!result.ok) {
  console.error(
    `[runtime-native] launcher not built (${result.reason}); bun:ffi cc will be used at run time`,
  );
} else {
  console.error(`[runtime-native] built ${result.path}`);
}
