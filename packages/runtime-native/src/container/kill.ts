import { MagikError } from "@magikrun/spec/errors";
import { syncCgroupFs } from "../cgroup-sync-fs.ts";
import { openCgroup } from "../cgroups/index.ts";
import { parseSignal } from "../signals.ts";
import type { RuntimeContext } from "./context.ts";

/** Sends a signal to the container's init, or with `all` to every process in its cgroup (runc kill --all). */
export async function killContainer(
  ctx: RuntimeContext,
  id: string,
  signal: string | number,
  all = false,
): Promise<void> {
  const signo = parseSignal(signal);
  const { store } = ctx;
  await store.withContainerLock(id, async () => {
    const stored = store.read(id);
    const status = store.status(stored);
    if (status === "stopped" && !all) {
      throw new MagikError("InvalidState", `container ${id} is not running`, { details: { id, status } });
    }
    if (all && stored.cgroup) {
      await openCgroup(stored.cgroup, syncCgroupFs).killAll(signo);
      return;
    }
    if (status === "stopped") return;
    try {
      process.kill(stored.pid, signo);
    } catch (err) {
      if ((err as { code?: string }).code === "ESRCH") return;
      throw new MagikError("SignalFailed", `kill ${stored.pid}: ${(err as Error).message}`, {
        cause: err,
        details: { id, pid: stored.pid, signal: signo },
      });
    }
  });
}
