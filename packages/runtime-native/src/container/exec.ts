import { read as fsRead, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { MagikError } from "@magikrun/spec/errors";
import type { ExecOptions, ExecResult, ExitStatus } from "@magikrun/spec/runtime";
import type { Process } from "@magikrun/spec/runtime-config";
import { syncCgroupFs } from "../cgroup-sync-fs.ts";
import { openCgroup } from "../cgroups/index.ts";
import { processSecurity } from "../integrations.ts";
import { type Add, CLONE_NEWTIME, planProcess } from "../launch-plan.ts";
import { OP, type PlannedOp } from "../plan-encoder.ts";
import { errnoName, O } from "../syscall.ts";
import type { RuntimeContext } from "./context.ts";
import { openStdio } from "./create.ts";
import { launch } from "./launch.ts";

/** /proc/<pid>/ns file names, in the order they are joined (user first: it grants the rights for the rest). */
const NS_FILES: [type: string, file: string][] = [
  ["user", "user"],
  ["ipc", "ipc"],
  ["uts", "uts"],
  ["network", "net"],
  ["cgroup", "cgroup"],
  ["mount", "mnt"],
];

/**
 * Runs another process in a running container (runc exec): it joins the container's namespaces and cgroup and
 * gets the container's capabilities, seccomp filter, no_new_privs and user unless the exec options override them.
 */
export async function execInContainer(
  ctx: RuntimeContext,
  id: string,
  options: ExecOptions,
): Promise<ExecResult> {
  const { store, sys } = ctx;
  const stored = store.read(id);
  const status = store.status(stored);
  if (status !== "running") {
    throw new MagikError("InvalidState", `container ${id} is ${status}, not running`, {
      details: { id, status },
    });
  }
  if (!options.process.args?.length) {
    throw new MagikError("InvalidInput", "exec needs a command", {
      details: { args: options.process.args ?? null },
    });
  }
  const base = stored.config.process;
  const proc: Process = {
    ...base,
    terminal: false,
    user: base?.user ?? { uid: 0, gid: 0 },
    cwd: base?.cwd ?? "/",
    ...options.process,
  };
  if (proc.terminal && !options.consoleSocket) {
    throw new MagikError("InvalidInput", "a terminal for exec needs a console socket", {
      details: { terminal: true },
      hint: "Pass --console-socket, or exec without --tty.",
    });
  }
  const linux = stored.config.linux ?? {};
  const namespaces = new Set((linux.namespaces ?? []).map((n) => n.type));
  const opened: number[] = [];
  const openOrThrow = (path: string): number => {
    const fd = sys.open(path, O.RDONLY);
    if (fd < 0) {
      throw new MagikError("ExecFailed", `cannot open ${path}: ${errnoName(fd)}`, {
        details: { path, errno: errnoName(fd) },
      });
    }
    opened.push(fd);
    return fd;
  };
  const exitDir = mkdtempSync(`${store.dir(id)}/exec-`);
  try {
    const ops: PlannedOp[] = [];
    const add: Add = (op, label, ints = [], strs = []) =>
      ops.push({ op, label, ints: ints.map((v) => BigInt(v)), strs });
    if (namespaces.has("time")) {
      // Entered by the reaper before the clone (a leading record): the kernel refuses it in the CLONE_VM child.
      add(OP.REAPER_SETNS, "join the container's time namespace", [
        openOrThrow(`/proc/${stored.pid}/ns/time`),
        CLONE_NEWTIME,
      ]);
    }
    if (proc.terminal && options.consoleSocket) {
      add(
        OP.CONSOLE_CONNECT,
        `connect to console socket ${options.consoleSocket}`,
        [],
        [options.consoleSocket],
      );
    }
    for (const [type, file] of NS_FILES) {
      if (!namespaces.has(type as never)) continue;
      add(OP.SETNS, `join the container's ${type} namespace`, [
        openOrThrow(`/proc/${stored.pid}/ns/${file}`),
        0,
      ]);
    }
    const pidNsFd = namespaces.has("pid") ? openOrThrow(`/proc/${stored.pid}/ns/pid`) : -1;
    add(OP.SYNC_WAIT, "wait for the runtime (cgroup)");
    const security = processSecurity(proc.capabilities, linux.seccomp, ctx.warn);
    if (security.capabilities) proc.capabilities = security.capabilities;
    const stdioFds: [number, number, number] = [
      openStdio(ctx, options.stdio?.stdin, 0, opened),
      openStdio(ctx, options.stdio?.stdout, 1, opened),
      openStdio(ctx, options.stdio?.stderr, 2, opened),
    ];
    planProcess(
      proc,
      {
        capabilityMask: security.capabilityMask,
        lastCap: security.lastCap,
        stdioFds,
        warn: ctx.warn,
        debug: ctx.debug,
        ...(security.seccomp ? { seccomp: security.seccomp } : {}),
      },
      add,
      ops,
    );
    const cgroup = stored.cgroup ? openCgroup(stored.cgroup, syncCgroupFs) : undefined;
    const launched = await launch(sys, {
      ops,
      cloneFlags: 0,
      userNs: false,
      pidNsFd,
      exitDir,
      until: "exec",
      deadline: Date.now() + ctx.limits.CONTAINER_START_TIMEOUT_MS,
      errorCode: "ExecFailed",
      beforeRelease: async (pid) => {
        await cgroup?.join(pid);
      },
    });
    if (options.pidFile) writeFileSync(options.pidFile, String(launched.pid));
    if (options.detach) {
      // Nobody waits: the reaper still records the status in the exit directory, removed with the container.
      sys.close(launched.notifyFd);
      return { pid: launched.pid };
    }
    const exit = new Promise<ExitStatus>((resolve) => {
      fsRead(launched.notifyFd, Buffer.alloc(1), 0, 1, null, () => {
        sys.close(launched.notifyFd);
        sys.waitpidNoHang(launched.reaperPid);
        const record = readExit(exitDir);
        rmSync(exitDir, { recursive: true, force: true });
        resolve(record);
      });
    });
    return { pid: launched.pid, exit };
  } catch (err) {
    rmSync(exitDir, { recursive: true, force: true });
    throw err;
  } finally {
    for (const fd of opened) sys.close(fd);
  }
}

function readExit(dir: string): ExitStatus {
  try {
    const [code, signal] = readFileSync(`${dir}/exit`, "utf8").trim().split(" ").map(Number);
    if (signal) return { code: code ?? 128 + signal, reason: "signaled", signal: String(signal) };
    return { code: code ?? 0, reason: "exited" };
  } catch {
    return { code: 137, reason: "killed", message: "the exit status was lost" };
  }
}
