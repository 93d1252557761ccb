import { MagikError } from "@magikrun/spec/errors";
import { encodePlan, OP, type PlannedOp } from "../plan-encoder.ts";
import { errnoName, O, type Syscall } from "../syscall.ts";
import { MSG, StatusReader, stepError } from "./status-pipe.ts";

/** The host fds the launcher's operations use by number: they must reach the reaper program. */
export function fdsNamedBy(ops: readonly PlannedOp[]): number[] {
  const fds = new Set<number>();
  for (const op of ops) {
    if (op.op === OP.SETNS || op.op === OP.FIFO_WAIT || op.op === OP.REAPER_SETNS || op.op === OP.HOOK) {
      fds.add(Number(op.ints[0]));
    }
    if (op.op === OP.STDIO) for (const fd of op.ints) if (fd > 2n) fds.add(Number(fd));
  }
  return [...fds];
}

export interface LaunchRequest {
  ops: PlannedOp[];
  cloneFlags: number;
  userNs: boolean;
  pidNsFd: number;
  /** Directory the reaper writes `exit` into. */
  exitDir: string;
  /**
   * Host-side work that does not need the pid (the cgroup's directories and limits): run while the reaper
   * starts and clones the container on the other core, instead of before it. A failure is reported once the
   * pid is known, so that the process can be killed.
   */
  whileStarting?(): Promise<void>;
  /** Called with the container's pid while it waits on the sync pipe: id maps, cgroup join, hooks. */
  beforeRelease(pid: number): Promise<void> | void;
  /** At the plan's HOOKS_SYNC step (after the mounts): runs the runtime's hooks, returns the new deadline. */
  atHooks?(pid: number): Promise<number>;
  /** Stop after READY (create: the process waits on the exec fifo) or run to execve (exec). */
  until: "ready" | "exec";
  deadline: number;
  errorCode: "CreateFailed" | "ExecFailed";
}

export interface Launched {
  pid: number;
  reaperPid: number;
  /** Read end that reaches EOF when the reaper has recorded the exit status and exited. */
  notifyFd: number;
}

/**
 * Starts the reaper and the container process, and drives the handshake: pid → beforeRelease → release →
 * READY/EOF or the failing step. On failure nothing is left: the process is killed and the reaper waited for.
 */
export async function launch(sys: Syscall, req: LaunchRequest): Promise<Launched> {
  const opened: number[] = [];
  const must = (fd: number, what: string): number => {
    if (fd < 0) {
      throw new MagikError(req.errorCode, `${what}: ${errnoName(fd)}`, { details: { errno: errnoName(fd) } });
    }
    opened.push(fd);
    return fd;
  };
  const pipe = (what: string): [number, number] => {
    const p = sys.pipe();
    if (typeof p === "number") return [must(p, what), -1];
    opened.push(p[0], p[1]);
    return p;
  };
  const closeFd = (fd: number) => {
    const i = opened.indexOf(fd);
    if (i >= 0) {
      opened.splice(i, 1);
      sys.close(fd);
    }
  };
  let pid = 0;
  let reaperPid = 0;
  let notifyRead = -1;
  try {
    const [statusRead, statusWrite] = pipe("status pipe");
    const [syncRead, syncWrite] = pipe("sync pipe");
    const [notifyR, notifyWrite] = pipe("exit pipe");
    notifyRead = notifyR;
    const exitDirFd = must(sys.open(req.exitDir, O.PATH | O.DIRECTORY), `open ${req.exitDir}`);
    const plan = encodePlan(req.ops);
    reaperPid = sys.launch(
      plan,
      req.cloneFlags,
      {
        statusWrite,
        syncRead,
        stateDir: exitDirFd,
        notifyWrite,
        pidNs: req.pidNsFd,
      },
      req.userNs,
      fdsNamedBy(req.ops),
    );
    if (reaperPid < 0) {
      const errno = errnoName(reaperPid);
      reaperPid = 0;
      throw new MagikError(req.errorCode, `cannot fork the reaper: ${errno}`, { details: { errno } });
    }
    for (const fd of [statusWrite, syncRead, notifyWrite, exitDirFd]) closeFd(fd);
    let startingError: { err: unknown } | undefined;
    await req.whileStarting?.().catch((err: unknown) => {
      startingError = { err };
    });
    const reader = new StatusReader(sys, statusRead);
    const first = reader.next(req.deadline);
    if (!first) throw new MagikError(req.errorCode, "the reaper exited before starting the container");
    if (first.kind === MSG.ERROR) throw stepError(first, req.ops, req.errorCode);
    pid = first.value;
    if (startingError) throw startingError.err;
    await req.beforeRelease(pid);
    if (sys.write(syncWrite, new Uint8Array([1])) !== 1) {
      throw new MagikError(req.errorCode, "the container process died before setup", { details: { pid } });
    }
    let deadline = req.deadline;
    const atHooks = req.ops.some((op) => op.op === OP.HOOKS_SYNC) ? req.atHooks : undefined;
    if (!atHooks) closeFd(syncWrite);
    for (;;) {
      const msg = reader.next(deadline);
      if (!msg) {
        if (req.until === "exec") break;
        throw new MagikError(req.errorCode, "the container process exited during setup", {
          details: { pid },
        });
      }
      if (msg.kind === MSG.ERROR) throw stepError(msg, req.ops, req.errorCode);
      if (msg.kind === MSG.READY && req.until === "ready") break;
      if (msg.kind === MSG.HOOKS && atHooks) {
        deadline = await atHooks(pid);
        if (sys.write(syncWrite, new Uint8Array([1])) !== 1) {
          throw new MagikError(req.errorCode, "the container process died during the hooks", {
            details: { pid },
          });
        }
        closeFd(syncWrite);
      }
    }
    closeFd(statusRead);
    opened.splice(opened.indexOf(notifyRead), 1);
    return { pid, reaperPid, notifyFd: notifyRead };
  } catch (err) {
    if (pid > 0) {
      try {
        process.kill(pid, 9);
      } catch {
        // already gone
      }
    }
    if (reaperPid > 0 && notifyRead >= 0) {
      // The reaper exits right after the container: its EOF means no process of ours is left.
      sys.readTimeout(notifyRead, 1, 5_000);
      sys.waitpidNoHang(reaperPid);
    }
    throw err;
  } finally {
    for (const fd of opened) sys.close(fd);
  }
}
