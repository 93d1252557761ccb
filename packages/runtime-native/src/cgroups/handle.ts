import { posix } from "node:path";
import { MagikError } from "@magikrun/spec/errors";
import { type CgroupFs, errnoOf, nodeCgroupFs } from "./fs.ts";
import { type CgroupStats, readStats } from "./stats.ts";

/** What a handle saves between CLI invocations; `openCgroup` takes it back. */
export interface CgroupState {
  /** Leaf directory per hierarchy: v1 controller name, or "unified" for the v2 hierarchy. */
  paths: Record<string, string>;
  /** Parent directories this handle created (outermost first); removed by destroy when they are empty. */
  created: string[];
}

export interface DestroyOptions {
  /** How long to wait for exiting processes to leave the cgroup; default 5000 ms. */
  timeoutMs?: number;
}

const FREEZE_TIMEOUT_MS = 5_000;
const POLL_MS = 10;
// Controllers whose cgroup.procs lists the container's processes; any v1 hierarchy would do.
const PROCS_PREFERENCE = ["pids", "freezer", "memory", "cpu", "cpuacct", "devices", "blkio", "cpuset"];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class CgroupHandle {
  readonly paths: Readonly<Record<string, string>>;
  readonly created: readonly string[];
  /** Settings accepted but not enforced when the cgroup was created. */
  readonly warnings: readonly string[];
  readonly #fs: CgroupFs;

  constructor(state: CgroupState, fs: CgroupFs = nodeCgroupFs, warnings: readonly string[] = []) {
    this.paths = Object.freeze({ ...state.paths });
    this.created = Object.freeze([...state.created]);
    this.warnings = Object.freeze([...warnings]);
    this.#fs = fs;
  }

  /** Distinct leaf directories (co-mounted v1 controllers share one). */
  get directories(): string[] {
    return [...new Set(Object.values(this.paths))];
  }

  /** Moves a process (and so its future children) into the cgroup in every hierarchy. */
  async join(pid: number): Promise<void> {
    if (!Number.isSafeInteger(pid) || pid <= 0) {
      throw new MagikError("InvalidInput", `cannot join pid ${pid} to a cgroup`, { details: { pid } });
    }
    for (const dir of this.directories) {
      try {
        await this.#fs.write(posix.join(dir, "cgroup.procs"), String(pid));
      } catch (err) {
        throw new MagikError("CreateFailed", `cannot move pid ${pid} into cgroup ${dir}`, {
          cause: err,
          details: { pid, path: dir, errno: errnoOf(err) },
          ...(errnoOf(err) === "ESRCH" ? { hint: "The process has already exited." } : {}),
        });
      }
    }
  }

  /** A directory fd of the v2 cgroup for clone3(CLONE_INTO_CGROUP); the caller closes it. */
  openDirFd(): number {
    const dir = this.paths.unified;
    if (dir === undefined) {
      throw new MagikError("NotSupported", "this host has no cgroup v2 hierarchy to clone into", {
        details: { paths: this.paths },
        hint: "Join the cgroup with join(pid) instead of CLONE_INTO_CGROUP.",
      });
    }
    return this.#fs.openDirectory(dir);
  }

  async freeze(): Promise<void> {
    await this.#setFrozen(true);
  }

  async thaw(): Promise<void> {
    await this.#setFrozen(false);
  }

  async #setFrozen(frozen: boolean): Promise<void> {
    const v1 = this.paths.freezer;
    const v2 = this.paths.unified;
    let write: () => Promise<void>;
    let done: () => Promise<boolean>;
    if (v1 !== undefined) {
      const state = posix.join(v1, "freezer.state");
      const want = frozen ? "FROZEN" : "THAWED";
      write = () => this.#fs.write(state, want);
      done = async () => (await this.#fs.read(state)).trim() === want;
    } else if (v2 !== undefined && (await this.#fs.exists(posix.join(v2, "cgroup.freeze")))) {
      write = () => this.#fs.write(posix.join(v2, "cgroup.freeze"), frozen ? "1" : "0");
      done = async () =>
        /^frozen (\d)$/m.exec(await this.#fs.read(posix.join(v2, "cgroup.events")))?.[1] ===
        (frozen ? "1" : "0");
    } else {
      throw new MagikError(
        "NotSupported",
        "no freezer: neither the v1 freezer controller nor cgroup.freeze exists",
        {
          details: { paths: this.paths },
        },
      );
    }
    const deadline = Date.now() + FREEZE_TIMEOUT_MS;
    // A v1 freeze can stall in FREEZING while a task is in an uninterruptible sleep; writing again retries it.
    for (let attempt = 0; ; attempt++) {
      if (attempt % 10 === 0) await write();
      if (await done()) return;
      if (Date.now() > deadline) break;
      await sleep(POLL_MS);
    }
    if (frozen) await this.#setFrozen(false).catch(() => {});
    throw new MagikError(
      "Timeout",
      `cgroup did not become ${frozen ? "frozen" : "thawed"} in ${FREEZE_TIMEOUT_MS} ms`,
      {
        details: { paths: this.paths },
      },
    );
  }

  /** Every process in the cgroup and in any cgroups created below it. */
  async pids(): Promise<number[]> {
    const key = PROCS_PREFERENCE.find((c) => this.paths[c] !== undefined) ?? "unified";
    const dir = this.paths[key] ?? this.directories[0];
    if (dir === undefined) return [];
    const found: number[] = [];
    const walk = async (d: string): Promise<void> => {
      let text: string;
      try {
        text = await this.#fs.read(posix.join(d, "cgroup.procs"));
      } catch (err) {
        if (errnoOf(err) === "ENOENT") return;
        throw err;
      }
      for (const line of text.split("\n")) if (line.trim() !== "") found.push(Number(line));
      for (const child of await this.#fs.listDirs(d).catch(() => [])) await walk(posix.join(d, child));
    };
    await walk(dir);
    return [...new Set(found)].sort((a, b) => a - b);
  }

  /**
   * Signals every process. SIGKILL uses cgroup.kill where the kernel has it; otherwise the cgroup is frozen
   * around the signalling so that no process can fork a child that escapes the signal.
   */
  async killAll(signal: NodeJS.Signals | number = "SIGKILL"): Promise<void> {
    const unified = this.paths.unified;
    const isKill = signal === "SIGKILL" || signal === 9;
    if (isKill && unified !== undefined && (await this.#fs.exists(posix.join(unified, "cgroup.kill")))) {
      await this.#fs.write(posix.join(unified, "cgroup.kill"), "1");
      return;
    }
    const frozen = await this.freeze().then(
      () => true,
      () => false,
    );
    try {
      for (const pid of await this.pids()) {
        try {
          process.kill(pid, signal);
        } catch (err) {
          if (errnoOf(err) !== "ESRCH") throw err;
        }
      }
    } finally {
      if (frozen) await this.thaw();
    }
  }

  stats(): Promise<CgroupStats> {
    return readStats(this.paths, this.#fs);
  }

  /**
   * Removes the cgroup in every hierarchy, including cgroups the container created below it, then the parents
   * this handle created if nothing else uses them. Waits for exiting processes to leave.
   */
  async destroy(options: DestroyOptions = {}): Promise<void> {
    const deadline = Date.now() + (options.timeoutMs ?? 5_000);
    let firstError: unknown;
    for (const dir of this.directories) {
      await this.#removeTree(dir, deadline).catch((err) => {
        firstError ??= err;
      });
    }
    for (const dir of [...this.created].reverse()) {
      await this.#fs.rmdir(dir).catch((err) => {
        // Another container's cgroup still lives there, or someone removed it already: both are fine.
        if (!["ENOENT", "EBUSY", "ENOTEMPTY"].includes(errnoOf(err) ?? "")) firstError ??= err;
      });
    }
    if (firstError !== undefined) {
      if (firstError instanceof MagikError) throw firstError;
      throw new MagikError("DeleteFailed", `cannot remove cgroup: ${(firstError as Error).message}`, {
        cause: firstError,
        details: { paths: this.paths, errno: errnoOf(firstError) },
      });
    }
  }

  async #removeTree(dir: string, deadline: number): Promise<void> {
    // rmdir first: listing a cgroup directory (dozens of control files) costs more than the rmdir, and a
    // container's cgroup rarely has children. EBUSY means children or processes: remove the children, retry.
    let listed = false;
    for (;;) {
      try {
        await this.#fs.rmdir(dir);
        return;
      } catch (err) {
        const errno = errnoOf(err);
        if (errno === "ENOENT") return;
        if ((errno === "EBUSY" || errno === "ENOTEMPTY") && !listed) {
          listed = true;
          let children: string[];
          try {
            children = await this.#fs.listDirs(dir);
          } catch (listErr) {
            if (errnoOf(listErr) === "ENOENT") return;
            throw listErr;
          }
          for (const child of children) await this.#removeTree(posix.join(dir, child), deadline);
          continue;
        }
        if (errno !== "EBUSY" || Date.now() > deadline) {
          const procs = await this.#fs.read(posix.join(dir, "cgroup.procs")).catch(() => "");
          throw new MagikError("DeleteFailed", `cannot remove cgroup ${dir}: ${errno ?? String(err)}`, {
            cause: err,
            details: {
              path: dir,
              errno,
              pids: procs
                .split("\n")
                .filter((l) => l !== "")
                .map(Number),
            },
            hint: "Processes are still in the cgroup: stop them first (killAll), then destroy again.",
          });
        }
        await sleep(POLL_MS);
      }
    }
  }

  toJSON(): CgroupState {
    return { paths: { ...this.paths }, created: [...this.created] };
  }
}

/** Re-opens the cgroup of a container from its saved state (or from its leaf paths alone). */
export function openCgroup(
  state: CgroupState | Record<string, string>,
  fs: CgroupFs = nodeCgroupFs,
): CgroupHandle {
  const full =
    typeof state.paths === "object" && state.paths !== null
      ? (state as CgroupState)
      : { paths: state as Record<string, string>, created: [] };
  for (const [key, dir] of Object.entries(full.paths)) {
    if (typeof dir !== "string" || !dir.startsWith("/") || dir.split("/").includes("..")) {
      throw new MagikError("InvalidInput", `saved cgroup path for ${key} is not an absolute path`, {
        details: { controller: key, path: dir },
        hint: "The container's state file is corrupt; delete the container with --force.",
      });
    }
  }
  const created = Array.isArray(full.created) ? full.created : [];
  const leaves = Object.values(full.paths);
  for (const dir of created) {
    // destroy() removes these, so a tampered state file must not point it anywhere but above the leaves.
    if (typeof dir !== "string" || !leaves.some((leaf) => leaf.startsWith(`${dir}/`))) {
      throw new MagikError(
        "InvalidInput",
        "saved cgroup state lists a directory that is not a parent of its cgroup",
        {
          details: { path: dir, paths: full.paths },
          hint: "The container's state file is corrupt; delete the container with --force.",
        },
      );
    }
  }
  return new CgroupHandle({ paths: full.paths, created }, fs);
}
