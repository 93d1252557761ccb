import { posix } from "node:path";
import type { CgroupFs } from "./fs.ts";
import type { CgroupLayout } from "./layout.ts";

function errno(code: string, path: string): Error {
  return Object.assign(new Error(`${code}: ${path}`), { code });
}

/**
 * In-memory cgroupfs for tests without root: directories get empty control files on creation, writes are
 * logged in order, files can be declared missing and writes made to fail.
 */
export class FakeCgroupFs implements CgroupFs {
  readonly dirs = new Set<string>();
  readonly files = new Map<string, string>();
  readonly writes: [path: string, value: string][] = [];
  readonly removed: string[] = [];
  /** Basenames of control files this fake kernel does not have. */
  readonly missing = new Set<string>();
  /** Returns an errno to make a write fail. */
  failWrite: (path: string, value: string) => string | undefined = () => undefined;

  constructor(roots: string[]) {
    for (const root of roots) this.#addDir(root);
  }

  #addDir(path: string): void {
    this.dirs.add(path);
    for (const f of ["cgroup.procs", "cpuset.cpus", "cpuset.mems", "cgroup.subtree_control"]) {
      this.files.set(posix.join(path, f), "");
    }
    const parentEnabled = this.files.get(posix.join(posix.dirname(path), "cgroup.subtree_control"));
    this.files.set(
      posix.join(path, "cgroup.controllers"),
      parentEnabled ?? "cpu io memory pids hugetlb cpuset",
    );
  }

  async mkdir(path: string): Promise<boolean> {
    if (this.dirs.has(path)) return false;
    if (!this.dirs.has(posix.dirname(path))) throw errno("ENOENT", path);
    this.#addDir(path);
    return true;
  }

  async rmdir(path: string): Promise<void> {
    if (!this.dirs.has(path)) throw errno("ENOENT", path);
    if (this.#children(path).length > 0) throw errno("EBUSY", path);
    if ((this.files.get(posix.join(path, "cgroup.procs")) ?? "").trim() !== "") throw errno("EBUSY", path);
    this.dirs.delete(path);
    for (const key of [...this.files.keys()]) if (posix.dirname(key) === path) this.files.delete(key);
    this.removed.push(path);
  }

  async write(path: string, value: string): Promise<void> {
    if (!(await this.exists(path))) throw errno("ENOENT", path);
    const failure = this.failWrite(path, value);
    if (failure !== undefined) throw errno(failure, path);
    this.writes.push([path, value]);
    if (posix.basename(path) === "cgroup.subtree_control" && value.startsWith("+")) {
      const old = this.files.get(path) ?? "";
      this.files.set(path, `${old} ${value.slice(1)}`.trim());
    } else this.files.set(path, value);
  }

  async read(path: string): Promise<string> {
    const value = this.files.get(path);
    if (value === undefined) throw errno("ENOENT", path);
    return value;
  }

  async exists(path: string): Promise<boolean> {
    if (this.dirs.has(path) || this.files.has(path)) return true;
    return this.dirs.has(posix.dirname(path)) && !this.missing.has(posix.basename(path));
  }

  async listDirs(path: string): Promise<string[]> {
    if (!this.dirs.has(path)) throw errno("ENOENT", path);
    return this.#children(path).map((d) => posix.basename(d));
  }

  #children(path: string): string[] {
    return [...this.dirs].filter((d) => posix.dirname(d) === path && d !== path);
  }

  openDirectory(path: string): number {
    if (!this.dirs.has(path)) throw errno("ENOENT", path);
    return 42;
  }

  /** Device programs attached, by cgroup directory. */
  readonly devicePrograms = new Map<string, Uint8Array>();

  attachDeviceProgram(path: string, program: Uint8Array): void {
    if (!this.dirs.has(path)) throw errno("ENOENT", path);
    this.devicePrograms.set(path, program);
  }

  /** Values written to one file, in order. */
  written(path: string): string[] {
    return this.writes.filter(([p]) => p === path).map(([, v]) => v);
  }
}

const mount = (mountPoint: string) => ({ mountPoint, root: "/" });

export function v1Layout(): CgroupLayout {
  const cpu = mount("/cg/cpu,cpuacct");
  return {
    mode: "v1",
    v1: {
      cpu,
      cpuacct: cpu,
      cpuset: mount("/cg/cpuset"),
      memory: mount("/cg/memory"),
      pids: mount("/cg/pids"),
      freezer: mount("/cg/freezer"),
      devices: mount("/cg/devices"),
      blkio: mount("/cg/blkio"),
    },
    own: { v1: { memory: "/user.slice/session" } },
  };
}

export function v2Layout(): CgroupLayout {
  return {
    mode: "v2",
    v1: {},
    v2: { ...mount("/cg"), controllers: ["cpuset", "cpu", "io", "memory", "hugetlb", "pids"] },
    own: { v1: {}, v2: "/user.slice/session" },
  };
}

/** Like the development machine: v1 controllers, plus a v2 mount that holds only hugetlb. */
export function hybridLayout(): CgroupLayout {
  const layout = v1Layout();
  return {
    ...layout,
    mode: "hybrid",
    v2: { ...mount("/cg/unified"), controllers: ["hugetlb"] },
    own: { v1: layout.own.v1, v2: "/" },
  };
}

export function fakeFsFor(layout: CgroupLayout): FakeCgroupFs {
  const roots = new Set(["/cg", ...Object.values(layout.v1).map((m) => m.mountPoint)]);
  if (layout.v2) roots.add(layout.v2.mountPoint);
  const fs = new FakeCgroupFs([...roots]);
  for (const root of roots) {
    fs.files.set(posix.join(root, "cpuset.cpus"), "0-1");
    fs.files.set(posix.join(root, "cpuset.mems"), "0");
  }
  if (layout.v2) {
    fs.files.set(posix.join(layout.v2.mountPoint, "cgroup.controllers"), layout.v2.controllers.join(" "));
  }
  return fs;
}
