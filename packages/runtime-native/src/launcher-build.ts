import { existsSync, readdirSync, renameSync, statSync } from "node:fs";
import { dirname } from "node:path";

/**
 * Where launcher.c and its builds live: MAGIKRUN_NATIVE_DIR when set; `native/` beside the executable for a CLI
 * built with `bun build --compile` (its modules live in the virtual /$bunfs, see apps/cli/scripts/build.ts);
 * else this package's native/ directory.
 */
function nativeDir(): string {
  if (process.env.MAGIKRUN_NATIVE_DIR) return process.env.MAGIKRUN_NATIVE_DIR;
  if (import.meta.url.startsWith("file:///$bunfs/")) return `${dirname(process.execPath)}/native`;
  return new URL("../native", import.meta.url).pathname;
}
const NATIVE_DIR = nativeDir();
export const LAUNCHER_SOURCE = `${NATIVE_DIR}/launcher.c`;
export const LAUNCHER_LIBRARY = `${NATIVE_DIR}/launcher.so`;
/** The reaper program: the same source, statically linked (see mr_launch). */
export const REAPER_PROGRAM = `${NATIVE_DIR}/magikrun-reaper`;

/** launcher.c includes the other sources of the directory: a build is stale if any of them is newer. */
function newestSourceMtime(): number {
  return Math.max(
    ...readdirSync(NATIVE_DIR)
      .filter((f) => f.endsWith(".c") || f.endsWith(".h"))
      .map((f) => statSync(`${NATIVE_DIR}/${f}`).mtimeMs),
  );
}

// Asked on every launch: the answer is kept once it is yes (a build only ever makes a file fresher).
const fresh = new Set<string>();

function isFresh(path: string): boolean {
  if (fresh.has(path)) return true;
  if (!existsSync(path)) return false;
  if (statSync(path).mtimeMs < newestSourceMtime()) return false;
  fresh.add(path);
  return true;
}

/** True when the shared object exists and is at least as new as its C source. */
export function launcherIsFresh(): boolean {
  return isFresh(LAUNCHER_LIBRARY);
}

/**
 * The reaper program if it is built and current. Without it the runtime itself is forked to become the reaper
 * (slower: its page tables are copied, and the reaper keeps the runtime's image).
 */
export function reaperProgram(): string | undefined {
  // MAGIKRUN_NO_REAPER_PROGRAM=1 forces the fork-the-runtime fallback, to test it where the program exists.
  if (process.env.MAGIKRUN_NO_REAPER_PROGRAM === "1") return undefined;
  return isFresh(REAPER_PROGRAM) ? REAPER_PROGRAM : undefined;
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
  // Static when libc.a is there (smallest RSS); dynamic otherwise. Failure only costs memory, not function.
  for (const extra of [["-static"], []]) {
    const reaperTmp = `${REAPER_PROGRAM}.${process.pid}.tmp`;
    const built = Bun.spawnSync(
      [compiler, "-O2", "-DMAGIKRUN_REAPER_MAIN", ...extra, "-o", reaperTmp, LAUNCHER_SOURCE],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    if (built.exitCode === 0) {
      renameSync(reaperTmp, REAPER_PROGRAM);
      break;
    }
  }
  return { ok: true, path: LAUNCHER_LIBRARY };
}
