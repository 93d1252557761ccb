import { rmSync } from "node:fs";
import { MagikError } from "@magikrun/spec";
import { runHooks } from "../hooks.ts";
import { isSameLiveProcess } from "../proc.ts";
import { errnoName, O } from "../syscall.ts";
import type { RuntimeContext } from "./context.ts";

const ETIMEDOUT = 110;
const POLL_SLICE_MS = 100;

/**
 * Releases a created container: opening the exec fifo for reading lets the process's blocked open for writing
 * complete; it writes one byte and goes on to execve. The fifo is then removed, which is what marks the
 * container as started for every later command.
 */
export async function startContainer(ctx: RuntimeContext, id: string): Promise<void> {
  const { store, sys } = ctx;
  await store.withContainerLock(id, async () => {
    const stored = store.read(id);
    const status = store.status(stored);
    if (status !== "created") {
      throw new MagikError("InvalidState", `container ${id} is ${status}, not created`, {
        details: { id, status },
      });
    }
    await runHooks("startContainer", stored.config.hooks?.startContainer, store.ociState(stored));
    const fifo = `${store.dir(id)}/exec.fifo`;
    const fd = sys.open(fifo, O.RDONLY | O.NONBLOCK);
    if (fd < 0) {
      throw new MagikError("StartFailed", `cannot open the exec fifo: ${errnoName(fd)}`, {
        details: { id, path: fifo, errno: errnoName(fd) },
      });
    }
    try {
      const deadline = Date.now() + ctx.limits.CONTAINER_START_TIMEOUT_MS;
      for (;;) {
        const got = sys.readTimeout(fd, 1, POLL_SLICE_MS);
        if (typeof got !== "number" && got.length === 1) break;
        const died = !isSameLiveProcess(stored.pid, stored.pidStartTime);
        if (died || (typeof got === "number" && got !== -ETIMEDOUT && got !== -11) || Date.now() > deadline) {
          throw new MagikError(
            died ? "StartFailed" : "Timeout",
            died ? `container ${id} exited before it was started` : `container ${id} did not start in time`,
            { details: { id, pid: stored.pid } },
          );
        }
      }
    } finally {
      sys.close(fd);
    }
    rmSync(fifo, { force: true });
    await runHooks("poststart", stored.config.hooks?.poststart, store.ociState(stored)).catch((err) => {
      ctx.warn(`poststart hook failed: ${(err as Error).message}`);
    });
  });
}
