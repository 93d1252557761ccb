import { existsSync, renameSync, statSync } from "node:fs";

export const LAUNCHER_SOURCE = new URL("../native/launcher.c", import.meta.url).pathname;
export const LAUNCHER_LIBRARY = new URL("../native/launcher.so", import.meta.url).pathname;

/** True when the shared object exists and is at least as new as its C source. */
export function launcherIsFresh(): boolean {
  if (!existsSync(LAUNCHER_LIBRARY)) return false;
  return statSync(LAUNCHER_LIBRARY).mtimeMs >= statSync(LAUNCHER_SOURCE).mtimeMs;
}

/** Compiles the launcher with the system compiler; writes to a temp name first so concurrent loaders never see half a file. */
export function buildLauncher(): { ok: true; path: string } | { ok: false; reason: string } {
  const compiler = Bun.which("cc") ?? Bun.which("gcc");
  if (!compiler) return { ok: false, reason: "no C compiler (cc/gcc) on PATH" };
  const tmp = `${LAUNCHER_LIBRARY}.${process.pid}.tmp`;
  const result = Bun.spawnSync([compiler, "-O2", "-Wall", "-shared", "-fPIC", "-o", tmp, LAUNCHER_SOURCE], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  if (result.exitCode !== 0) {
    return { ok: false, reason: `${compiler} failed: ${result.stderr.toString().trim()}` };
  }
  renameSync(tmp, LAUNCHER_LIBRARY);
  return { ok: true, path: LAUNCHER_LIBRARY };
}
