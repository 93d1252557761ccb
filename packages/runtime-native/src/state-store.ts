import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { MagikError } from "@magikrun/spec/errors";
import { OCI_RUNTIME_SPEC_VERSION, validateContainerId } from "@magikrun/spec/runtime";
import type { RuntimeConfig } from "@magikrun/spec/runtime-config";
import type { ContainerState, ContainerStatus } from "@magikrun/spec/state";
import type { CgroupState } from "./cgroups/index.ts";
import { isSameLiveProcess, readProcStat } from "./proc.ts";
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
  /**
   * Set only while create runs (read from the creating record, never stored): the creating process. `pid` is
   * then that process too, and `reaperPid` the reader's own pid, which waitpid can never match.
   */
  creator?: { pid: number; startTime?: number };
}

/** What `lock` holds from the moment a container's directory appears until its state.json exists. */
export interface CreatingRecord {
  id: string;
  bundle: string;
  rootfs: string;
  annotations?: Record<string, string>;
  /** Where the cgroup goes (made during the create): `delete` removes it if the creator died midway. */
  cgroup?: CgroupState;
}

/**
 * A flock belongs to the open file description, which a reaper forked meanwhile (the fallback without the
 * reaper program) shares until it exits: closing our fd alone would leave the container locked for its life.
 */
function unlockAndClose(sys: Syscall, fd: number): void {
  sys.flock(fd, LOCK.UN);
  sys.close(fd);
}

let ownStartTime: number | undefined;

function creatingRecordText(record: CreatingRecord): string {
  ownStartTime ??= readProcStat(process.pid)?.startTime;
  return JSON.stringify({
    ...record,
    created: new Date().toISOString(),
    creator: { pid: process.pid, startTime: ownStartTime },
  });
}

function parseCreating(text: string): StoredContainer | undefined {
  let d: Record<string, unknown>;
  try {
    d = JSON.parse(text);
  } catch {
    return undefined;
  }
  const creator = d?.creator as { pid?: unknown; startTime?: unknown } | undefined;
  if (typeof d?.id !== "string" || typeof d.bundle !== "string" || typeof d.rootfs !== "string")
    return undefined;
  if (!Number.isSafeInteger(creator?.pid) || (creator!.pid as number) <= 0) return undefined;
  const pid = creator!.pid as number;
  const startTime = typeof creator!.startTime === "number" ? creator!.startTime : undefined;
  const annotations = d.annotations as Record<string, string> | undefined;
  return {
    id: d.id,
    bundle: d.bundle,
    rootfs: d.rootfs,
    pid,
    ...(startTime !== undefined ? { pidStartTime: startTime } : {}),
    reaperPid: process.pid,
    created: typeof d.created === "string" ? d.created : "",
    config: {
      ociVersion: OCI_RUNTIME_SPEC_VERSION,
      ...(annotations ? { annotations } : {}),
    } as RuntimeConfig,
    creator: startTime !== undefined ? { pid, startTime } : { pid },
    ...(isCgroupState(d.cgroup) ? { cgroup: d.cgroup } : {}),
  };
}

function isCgroupState(v: unknown): v is CgroupState {
  const paths = (v as { paths?: unknown } | null)?.paths;
  return (
    typeof paths === "object" &&
    paths !== null &&
    Object.values(paths).every((p) => typeof p === "string") &&
    Array.isArray((v as { created?: unknown }).created)
  );
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
 *   lock         flock(2) target serializing commands on the container; holds the `CreatingRecord`, and the
 *                creator holds the flock, until create has written state.json (or failed and removed it all)
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
      unlockAndClose(this.sys, fd);
    }
  }

  /** Serializes creation under the root so the duplicate and MAX_CONTAINERS checks cannot race. */
  withRootLock<T>(fn: () => Promise<T> | T): Promise<T> {
    this.ensureRoot();
    return this.withLock(`${this.root}/.lock`, fn);
  }

  /**
   * Makes the directory of a container being created, visible only once its lock file holds the creating record
   * and is flocked by this process (no other command can act on it until `release`). Call under the root lock.
   */
  beginCreate(record: CreatingRecord): { release(): void } {
    const dir = this.dir(record.id);
    // One per process is enough under the root lock; the id is not in the name, which must stay under NAME_MAX.
    const tmp = `${this.root}/.new-${process.pid}`;
    try {
      mkdirSync(tmp, { mode: 0o700 });
    } catch {
      // left by an earlier process with this pid that was killed mid-create
      rmSync(tmp, { recursive: true, force: true });
      mkdirSync(tmp, { mode: 0o700 });
    }
    const lockPath = `${tmp}/lock`;
    const fd = this.sys.open(lockPath, O.RDWR | O.CREAT, 0o600);
    const fail = (step: string, rc: number): MagikError => {
      if (fd >= 0) this.sys.close(fd);
      rmSync(tmp, { recursive: true, force: true });
      return new MagikError("CreateFailed", `cannot ${step} ${lockPath}: ${errnoName(rc)}`, {
        details: { id: record.id, path: lockPath, errno: errnoName(rc) },
      });
    };
    if (fd < 0) throw fail("open", fd);
    const text = Buffer.from(creatingRecordText(record));
    const written = this.sys.write(fd, text);
    if (written !== text.length) throw fail("write", written < 0 ? written : -5);
    const locked = this.sys.flock(fd, LOCK.EX | LOCK.NB);
    if (locked !== 0) throw fail("flock", locked);
    try {
      renameSync(tmp, dir);
    } catch (err) {
      throw fail("rename", -Math.abs((err as { errno?: number }).errno ?? 5));
    }
    // Commands of this process on the container queue behind the create, as those of others do on the flock.
    const path = `${dir}/lock`;
    let done!: () => void;
    const held = new Promise<void>((resolve) => {
      done = resolve;
    });
    const tail = (inProcessLocks.get(path) ?? Promise.resolve()).then(() => held);
    inProcessLocks.set(path, tail);
    return {
      release: () => {
        unlockAndClose(this.sys, fd);
        done();
        if (inProcessLocks.get(path) === tail) inProcessLocks.delete(path);
      },
    };
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
      return this.#readCreating(id);
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

  /** A container without state.json: being created (see `beginCreate`), or left by a killed creator. */
  #readCreating(id: string): StoredContainer {
    let text: string;
    try {
      text = readFileSync(`${this.dir(id)}/lock`, "utf8");
    } catch {
      throw notFound(id, this.root);
    }
    const stored = parseCreating(text);
    // Empty: a lock file made by another command (a directory from before creating records existed).
    if (!stored) throw notFound(id, this.root);
    // The create may have completed (and its process exited) since state.json was looked for.
    if (!isSameLiveProcess(stored.pid, stored.pidStartTime) && existsSync(`${this.dir(id)}/state.json`))
      return this.read(id);
    return stored;
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
    if (stored.creator) {
      // A creator gone without state.json was killed mid-create: stopped, as runc reports such a container, and
      // `delete` removes it. With state.json, the create completed after `stored` was read: a fresh read tells
      // the real status; this one never names the container's pid, so it stays a creating one.
      if (isSameLiveProcess(stored.creator.pid, stored.creator.startTime)) return "creating";
      return existsSync(`${dir}/state.json`) ? "creating" : "stopped";
    }
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
    if (stored.creator && existsSync(`${this.dir(stored.id)}/state.json`)) {
      try {
        return this.ociState(this.read(stored.id));
      } catch {
        // deleted since: the snapshot is all there is
      }
    }
    const status = this.status(stored);
    const state: ContainerState = {
      ociVersion: OCI_RUNTIME_SPEC_VERSION,
      id: stored.id,
      status,
      bundle: stored.bundle,
    };
    // While creating, the only pid is the creator's, not the container's: omitted, as the spec allows.
    if (status !== "stopped" && status !== "creating") state.pid = stored.pid;
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
