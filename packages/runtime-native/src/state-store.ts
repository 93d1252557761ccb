import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { MagikError } from "@magikrun/spec/errors";
import { OCI_RUNTIME_SPEC_VERSION, validateContainerId } from "@magikrun/spec/runtime";
import type { RuntimeConfig } from "@magikrun/spec/runtime-config";
import type { ContainerState, ContainerStatus } from "@magikrun/spec/state";
import type { CgroupState } from "./cgroups/index.ts";
import { isSameLiveProcess } from "./proc.ts";
import { errnoName, LOCK, O, type Syscall } from "./syscall.ts";

export const DEFAULT_STATE_ROOT = "/run/magikrun";

const EWOULDBLOCK = -11;
const inProcessLocks = new Map<string, Promise<void>>();

/** What the runtime keeps about a container between commands (state.json in its directory). */
export interface StoredContainer {
  id: string;
  bundle: string;
  rootfs: string;
  pid: number;
  pidStartTime?: number;
  reaperPid: number;
  created: string;
  config: RuntimeConfig;
  /** The cgroup's saved handle (cgroups/handle.ts), for `openCgroup` in later commands. */
  cgroup?: CgroupState;
}

function parseStored(data: unknown): StoredContainer | undefined {
  if (typeof data !== "object" || data === null) return undefined;
  const d = data as Record<string, unknown>;
  const isInt = (v: unknown) => Number.isSafeInteger(v) && (v as number) > 0;
  if (typeof d.id !== "string" || typeof d.bundle !== "string" || typeof d.rootfs !== "string")
    return undefined;
  if (!isInt(d.pid) || !isInt(d.reaperPid) || typeof d.created !== "string") return undefined;
  const stored: StoredContainer = {
    id: d.id,
    bundle: d.bundle,
    rootfs: d.rootfs,
    pid: d.pid as number,
    reaperPid: d.reaperPid as number,
    created: d.created,
    // Validated by zod when the bundle was loaded and written by us into a root-only directory: re-validating
    // it on every command cost 10-20 ms of each `state`/`start`/`kill`/`delete`.
    config: d.config as RuntimeConfig,
  };
  if (typeof d.pidStartTime === "number") stored.pidStartTime = d.pidStartTime;
  if (typeof d.cgroup === "object" && d.cgroup !== null) stored.cgroup = d.cgroup as CgroupState;
  return stored;
}

export interface ExitRecord {
  code: number;
  signal: number;
}

/**
 * One directory per container under the state root, mode 0700:
 *   state.json   what `StoredContainer` describes        exec.fifo  present until `start`
 *   exit         "<code> <signal>", written by the reaper  paused     present while frozen
 *   lock         flock(2) target serializing commands on the container
 */
export class StateStore {
  constructor(
    readonly root: string,
    private readonly sys: Syscall,
  ) {}

  dir(id: string): string {
    return `${this.root}/${id}`;
  }

  ensureRoot(): void {
    mkdirSync(this.root, { recursive: true, mode: 0o700 });
  }

  ids(): string[] {
    try {
      return readdirSync(this.root, { withFileTypes: true })
        .filter((e) => e.isDirectory() && !e.name.startsWith("."))
        .map((e) => e.name);
    } catch {
      return [];
    }
  }

  /**
   * Runs `fn` holding an exclusive flock on `path` (created if needed). Callers in this process queue on a
   * promise first, and the flock is polled with LOCK_NB: a blocking flock on the JS thread would deadlock
   * against a holder in the same process that is awaiting something.
   */
  async withLock<T>(path: string, fn: () => Promise<T> | T): Promise<T> {
    const previous = inProcessLocks.get(path) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => {
      release = resolve;
    });
    const tail = previous.then(() => mine);
    inProcessLocks.set(path, tail);
    await previous;
    try {
      return await this.#withFlock(path, fn);
    } finally {
      release();
      if (inProcessLocks.get(path) === tail) inProcessLocks.delete(path);
    }
  }

  async #withFlock<T>(path: string, fn: () => Promise<T> | T): Promise<T> {
    const fd = this.sys.open(path, O.RDWR | O.CREAT, 0o600);
    if (fd < 0) {
      throw new MagikError("Internal", `cannot open lock ${path}: ${errnoName(fd)}`, { details: { path } });
    }
    try {
      for (let delay = 1; ; delay = Math.min(delay * 2, 20)) {
        const rc = this.sys.flock(fd, LOCK.EX | LOCK.NB);
        if (rc === 0) break;
        if (rc !== EWOULDBLOCK) {
          throw new MagikError("Internal", `flock ${path}: ${errnoName(rc)}`, { details: { path } });
        }
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
      return await fn();
    } finally {
      this.sys.close(fd);
    }
  }

  /** Serializes creation under the root so the duplicate and MAX_CONTAINERS checks cannot race. */
  withRootLock<T>(fn: () => Promise<T> | T): Promise<T> {
    this.ensureRoot();
    return this.withLock(`${this.root}/.lock`, fn);
  }

  async withContainerLock<T>(id: string, fn: () => Promise<T> | T): Promise<T> {
    validateContainerId(id);
    if (!existsSync(this.dir(id))) throw notFound(id, this.root);
    try {
      return await this.withLock(`${this.dir(id)}/lock`, fn);
    } catch (err) {
      // Deleted by a concurrent command between the check and the lock.
      if (!existsSync(this.dir(id)) && (err as { code?: string }).code === "Internal")
        throw notFound(id, this.root);
      throw err;
    }
  }

  read(id: string): StoredContainer {
    validateContainerId(id);
    let text: string;
    try {
      text = readFileSync(`${this.dir(id)}/state.json`, "utf8");
    } catch {
      throw notFound(id, this.root);
    }
    let parsed: StoredContainer | undefined;
    try {
      parsed = parseStored(JSON.parse(text));
    } catch {
      parsed = undefined;
    }
    if (!parsed) {
      throw new MagikError("Internal", `state of container ${id} is corrupt`, {
        details: { id, path: `${this.dir(id)}/state.json` },
        hint: "Remove the container with `magikrun delete --force`.",
      });
    }
    return parsed;
  }

  write(stored: StoredContainer): void {
    const path = `${this.dir(stored.id)}/state.json`;
    writeFileSync(`${path}.tmp`, JSON.stringify(stored), { mode: 0o600 });
    renameSync(`${path}.tmp`, path);
  }

  exitRecord(id: string): ExitRecord | undefined {
    try {
      const [code, signal] = readFileSync(`${this.dir(id)}/exit`, "utf8")
        .trim()
        .split(" ")
        .map(Number);
      return { code: code ?? 0, signal: signal ?? 0 };
    } catch {
      return undefined;
    }
  }

  status(stored: StoredContainer): ContainerStatus {
    const dir = this.dir(stored.id);
    if (existsSync(`${dir}/exit`)) return "stopped";
    if (!isSameLiveProcess(stored.pid, stored.pidStartTime)) return "stopped";
    if (existsSync(`${dir}/exec.fifo`)) return "created";
    if (existsSync(`${dir}/paused`)) return "paused";
    return "running";
  }

  setPaused(id: string, paused: boolean): void {
    const path = `${this.dir(id)}/paused`;
    if (paused) writeFileSync(path, "", { mode: 0o600 });
    else rmSync(path, { force: true });
  }

  ociState(stored: StoredContainer): ContainerState {
    const status = this.status(stored);
    const state: ContainerState = {
      ociVersion: OCI_RUNTIME_SPEC_VERSION,
      id: stored.id,
      status,
      bundle: stored.bundle,
    };
    if (status !== "stopped") state.pid = stored.pid;
    const annotations = stored.config.annotations;
    if (annotations && Object.keys(annotations).length > 0) state.annotations = annotations;
    return state;
  }

  remove(id: string): void {
    rmSync(this.dir(id), { recursive: true, force: true });
  }
}

export function notFound(id: string, root: string): MagikError {
  return new MagikError("ContainerNotFound", `container ${id} does not exist`, { details: { id, root } });
}
