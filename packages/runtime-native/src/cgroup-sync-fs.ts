import { accessSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import {
  type CgroupFs,
  type CgroupLayout,
  layoutFrom,
  nodeCgroupFs,
  parseCgroupMounts,
} from "./cgroups/index.ts";

/**
 * The cgroup filesystem operations done synchronously. cgroupfs files are tiny and never block on disk, so
 * the thread-pool round trip of fs/promises (a millisecond or more per file on a busy machine, tens of files
 * per container) costs far more than the write itself.
 */
export const syncCgroupFs: CgroupFs = {
  async mkdir(path) {
    try {
      mkdirSync(path);
      return true;
    } catch (err) {
      if ((err as { code?: string }).code === "EEXIST") return false;
      throw err;
    }
  },
  async rmdir(path) {
    rmdirSync(path);
  },
  async write(path, value) {
    writeFileSync(path, value, { flag: "r+" });
  },
  async read(path) {
    return readFileSync(path, "utf8");
  },
  async exists(path) {
    try {
      accessSync(path);
      return true;
    } catch {
      return false;
    }
  },
  async listDirs(path) {
    return readdirSync(path, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
  },
  openDirectory: (path) => nodeCgroupFs.openDirectory(path),
  attachDeviceProgram: (path, program) => nodeCgroupFs.attachDeviceProgram(path, program),
};

/** The host's cgroup layout, read once per process (mounts and the runtime's own cgroup do not move under it). */
let cachedLayout: CgroupLayout | undefined;
export function cgroupLayout(): CgroupLayout {
  if (cachedLayout) return cachedLayout;
  const mountinfo = readFileSync("/proc/self/mountinfo", "utf8");
  const v2 = parseCgroupMounts(mountinfo).v2;
  let controllers: string[] = [];
  if (v2) {
    try {
      controllers = readFileSync(`${v2.mountPoint}/cgroup.controllers`, "utf8").split(/\s+/).filter(Boolean);
    } catch {
      controllers = [];
    }
  }
  cachedLayout = layoutFrom(mountinfo, readFileSync("/proc/self/cgroup", "utf8"), controllers);
  return cachedLayout;
}
