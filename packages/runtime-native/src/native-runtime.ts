import { read as fsRead } from "node:fs";
import { posix } from "node:path";
import { MagikError } from "@magikrun/spec/errors";
import { resolveLimits } from "@magikrun/spec/limits";
import type {
  BundleKind,
  DeleteOptions,
  ExecOptions,
  ExecResult,
  ExitStatus,
  KillOptions,
  OciRuntime,
} from "@magikrun/spec/runtime";
import type { Resources } from "@magikrun/spec/runtime-config";
import type { ContainerState } from "@magikrun/spec/state";
import { syncCgroupFs } from "./cgroup-sync-fs.ts";
import { openCgroup } from "./cgroups/index.ts";
import type { RuntimeContext } from "./container/context.ts";
import { sleep } from "./container/context.ts";
import { createContainer, type NativeCreateOptions } from "./container/create.ts";
import { deleteContainer } from "./container/delete.ts";
import { execInContainer } from "./container/exec.ts";
import { killContainer } from "./container/kill.ts";
import { startContainer } from "./container/start.ts";
import { updateContainer } from "./container/update.ts";
import { signalName } from "./signals.ts";
import { DEFAULT_STATE_ROOT, type ExitRecord, StateStore } from "./state-store.ts";
import { linuxSyscall, type Syscall } from "./syscall.ts";

export interface NativeRuntimeOptions {
  /** State root; default /run/magikrun. */
  root?: string;
  limits?: Partial<Record<string, number>>;
  syscall?: Syscall;
  /** Where warnings go (settings accepted but not enforced); default stderr. */
  onWarning?: (message: string) => void;
  /** Where debug messages go (expected conditions such as ambient capabilities not raised); default nowhere. */
  onDebug?: (message: string) => void;
}

export function exitStatusOf(record: ExitRecord): ExitStatus {
  if (record.signal > 0) {
    return { code: record.code, reason: "signaled", signal: signalName(record.signal) };
  }
  return { code: record.code, reason: "exited" };
}

/** Linux containers from OCI bundles: namespaces, mounts, cgroups, capabilities, seccomp. */
export class NativeRuntime implements OciRuntime {
  readonly name = "native";
  readonly bundleKinds: readonly BundleKind[] = ["oci"];
  readonly root: string;
  readonly #ctx: RuntimeContext;
  /** Exit pipes of containers this instance created: EOF arrives when the reaper has recorded the exit. */
  readonly #exitPipes = new Map<string, { fd: number; reaperPid: number; done?: Promise<void> }>();

  constructor(options: NativeRuntimeOptions = {}) {
    this.root = posix.resolve(options.root ?? DEFAULT_STATE_ROOT);
    const sys = options.syscall ?? linuxSyscall;
    this.#ctx = {
      store: new StateStore(this.root, sys),
      sys,
      limits: resolveLimits(options.limits),
      warn: options.onWarning ?? ((m) => console.error(`magikrun: warning: ${m}`)),
      debug: options.onDebug ?? (() => {}),
    };
  }

  get store(): StateStore {
    return this.#ctx.store;
  }

  async create(options: NativeCreateOptions): Promise<ContainerState> {
    const created = await createContainer(this.#ctx, options);
    this.#exitPipes.set(created.stored.id, { fd: created.notifyFd, reaperPid: created.stored.reaperPid });
    return created.state;
  }

  start(id: string): Promise<void> {
    return startContainer(this.#ctx, id);
  }

  async state(id: string): Promise<ContainerState> {
    return this.store.ociState(this.store.read(id));
  }

  kill(id: string, signal: string | number, options: KillOptions = {}): Promise<void> {
    return killContainer(this.#ctx, id, signal, options.all ?? false);
  }

  async delete(id: string, options: DeleteOptions = {}): Promise<void> {
    await deleteContainer(this.#ctx, id, options.force ?? false);
    this.#forget(id);
  }

  async list(): Promise<ContainerState[]> {
    const states: ContainerState[] = [];
    for (const id of this.store.ids()) {
      try {
        states.push(await this.state(id));
      } catch {
        // a container being created or deleted right now
      }
    }
    return states;
  }

  exec(id: string, options: ExecOptions): Promise<ExecResult> {
    return execInContainer(this.#ctx, id, options);
  }

  /** Settles with the exit status once the container's process has exited (also after `create` in another process). */
  async wait(id: string, options: { signal?: AbortSignal } = {}): Promise<ExitStatus> {
    const pipe = this.#exitPipes.get(id);
    if (pipe) {
      pipe.done ??= new Promise<void>((resolve) => {
        fsRead(pipe.fd, Buffer.alloc(1), 0, 1, null, () => resolve());
      });
      await (options.signal ? Promise.race([pipe.done, abortPromise(options.signal)]) : pipe.done);
    }
    let delay = 1;
    for (;;) {
      options.signal?.throwIfAborted();
      const record = this.store.exitRecord(id);
      if (record) return exitStatusOf(record);
      const stored = this.store.read(id);
      if (this.store.status(stored) === "stopped") {
        await sleep(5);
        const late = this.store.exitRecord(id);
        if (late) return exitStatusOf(late);
        return { code: 137, reason: "killed", message: "the exit status was lost (reaper killed)" };
      }
      await sleep(delay);
      delay = Math.min(delay * 2, 50);
    }
  }

  async pause(id: string): Promise<void> {
    await this.store.withContainerLock(id, async () => {
      const stored = this.store.read(id);
      const status = this.store.status(stored);
      if (status !== "running") {
        throw new MagikError("InvalidState", `container ${id} is ${status}, not running`, {
          details: { id, status },
        });
      }
      if (!stored.cgroup) throw new MagikError("NotSupported", `container ${id} has no cgroup to freeze`);
      await openCgroup(stored.cgroup, syncCgroupFs).freeze();
      this.store.setPaused(id, true);
    });
  }

  async resume(id: string): Promise<void> {
    await this.store.withContainerLock(id, async () => {
      const stored = this.store.read(id);
      const status = this.store.status(stored);
      if (status !== "paused") {
        throw new MagikError("InvalidState", `container ${id} is ${status}, not paused`, {
          details: { id, status },
        });
      }
      if (!stored.cgroup) throw new MagikError("NotSupported", `container ${id} has no cgroup to thaw`);
      await openCgroup(stored.cgroup, syncCgroupFs).thaw();
      this.store.setPaused(id, false);
    });
  }

  /** New resource limits for a created, running or paused container (runc update). */
  update(id: string, resources: Resources): Promise<void> {
    return updateContainer(this.#ctx, id, resources);
  }

  /** Process ids in the container's cgroup (runc ps). */
  async pids(id: string): Promise<number[]> {
    const stored = this.store.read(id);
    if (!stored.cgroup) return this.store.status(stored) === "stopped" ? [] : [stored.pid];
    return openCgroup(stored.cgroup, syncCgroupFs).pids();
  }

  async stats(id: string): Promise<unknown> {
    const stored = this.store.read(id);
    if (!stored.cgroup) throw new MagikError("NotSupported", `container ${id} has no cgroup`);
    return openCgroup(stored.cgroup, syncCgroupFs).stats();
  }

  #forget(id: string): void {
    const pipe = this.#exitPipes.get(id);
    if (!pipe) return;
    this.#exitPipes.delete(id);
    this.#ctx.sys.waitpidNoHang(pipe.reaperPid);
    // A pending fs.read still owns the fd until it completes (the reaper is gone, so it completes now).
    if (pipe.done) void pipe.done.then(() => this.#ctx.sys.close(pipe.fd));
    else this.#ctx.sys.close(pipe.fd);
  }
}

function abortPromise(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    signal.addEventListener("abort", () => reject(signal.reason), { once: true });
  });
}
