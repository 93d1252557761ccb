import { existsSync } from "node:fs";
import { MagikError } from "@magikrun/spec/errors";
import { validateContainerId } from "@magikrun/spec/runtime";
import { syncCgroupFs } from "../cgroup-sync-fs.ts";
import { openCgroup } from "../cgroups/index.ts";
import { runHooks } from "../hooks.ts";
import { isSameLiveProcess } from "../proc.ts";
import { type RuntimeContext, sleep } from "./context.ts";

const EXIT_WAIT_MS = 10_000;

/** Waits until the reaper has recorded the exit, or the process is gone without one (reaper killed). */
export async function waitForExitRecord(
  ctx: RuntimeContext,
  id: string,
  pid: number,
  startTime: number | undefined,
  timeoutMs: number,
): Promise<boolean> {
  const exitFile = `${ctx.store.dir(id)}/exit`;
  const deadline = Date.now() + timeoutMs;
  let delay = 1;
  while (Date.now() < deadline) {
    if (existsSync(exitFile)) return true;
    if (!isSameLiveProcess(pid, startTime)) {
      // The process is gone; give the reaper a moment to write its record.
      await sleep(5);
      return existsSync(exitFile) || !isSameLiveProcess(pid, startTime);
    }
    await sleep(delay);
    delay = Math.min(delay * 2, 20);
  }
  return false;
}

/**
 * Removes a container: a created one is killed (it never ran user code), a running or paused one only with
 * `force`. Afterwards no process, cgroup or state directory of it remains; poststop hooks run last.
 */
export async function deleteContainer(ctx: RuntimeContext, id: string, force = false): Promise<void> {
  validateContainerId(id);
  const { store } = ctx;
  await store.withContainerLock(id, async () => {
    let stored: ReturnType<typeof store.read>;
    try {
      stored = store.read(id);
    } catch (err) {
      // A directory without state.json is what an interrupted create leaves: nothing runs, remove it.
      if (existsSync(`${store.dir(id)}/state.json`)) throw err;
      store.remove(id);
      return;
    }
    const status = store.status(stored);
    const cgroup = stored.cgroup ? openCgroup(stored.cgroup, syncCgroupFs) : undefined;
    if (status !== "stopped") {
      if ((status === "running" || status === "paused") && !force) {
        throw new MagikError("DeleteFailed", `container ${id} is ${status}`, {
          details: { id, status },
          hint: "Stop it with `magikrun kill`, or use `delete --force`.",
        });
      }
      if (status === "paused") await cgroup?.thaw().catch(() => {});
      if (cgroup) await cgroup.killAll(9).catch(() => {});
      try {
        process.kill(stored.pid, 9);
      } catch {
        // already exited
      }
      if (!(await waitForExitRecord(ctx, id, stored.pid, stored.pidStartTime, EXIT_WAIT_MS))) {
        throw new MagikError("DeleteFailed", `container ${id} did not exit after SIGKILL`, {
          details: { id, pid: stored.pid },
        });
      }
    }
    if (cgroup) await cgroup.destroy();
    ctx.sys.waitpidNoHang(stored.reaperPid);
    const state = { ...store.ociState(stored), status: "stopped" as const };
    delete state.pid;
    store.remove(id);
    await runHooks("poststop", stored.config.hooks?.poststop, state).catch((err) => {
      ctx.warn(`poststop hook failed: ${(err as Error).message}`);
    });
  });
}
