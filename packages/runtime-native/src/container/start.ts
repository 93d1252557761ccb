import { rmSync } from "node:fs";
import { MagikError } from "@magikrun/spec/errors";
import { runHooks } from "../hooks.ts";
import { isSameLiveProcess } from "../proc.ts";
import { errnoName, O } from "../syscall.ts";
import type { RuntimeContext } from "./context.ts";

const ENXIO = -6;

/**
 * Releases a created container: one byte into the exec fifo wakes the process polling its read end, and it
 * goes on to execve. The fifo is then removed, which is what marks the container as started for every later
 * command.
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
    // startContainer hooks are run by the container's process once released (see OP_HOOK in the plan).
    const fifo = `${store.dir(id)}/exec.fifo`;
    // The process holds the read end while it waits; ENXIO means no reader: it is gone.
    const fd = sys.open(fifo, O.WRONLY | O.NONBLOCK);
    if (fd === ENXIO || (fd >= 0 && !isSameLiveProcess(stored.pid, stored.pidStartTime))) {
      if (fd >= 0) sys.close(fd);
      throw new MagikError("StartFailed", `container ${id} exited before it was started`, {
        details: { id, pid: stored.pid },
      });
    }
    if (fd < 0) {
      throw new MagikError("StartFailed", `cannot open the exec fifo: ${errnoName(fd)}`, {
        details: { id, path: fifo, errno: errnoName(fd) },
      });
    }
    try {
      const written = sys.write(fd, new Uint8Array([0x30]));
      if (written !== 1) {
        throw new MagikError("StartFailed", `cannot release container ${id}: ${errnoName(written)}`, {
          details: { id, errno: errnoName(written) },
        });
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
