import { closeSync, constants, openSync } from "node:fs";
import { access, mkdir, readdir, readFile, rmdir, writeFile } from "node:fs/promises";
import { attachDeviceProgram } from "./bpf-syscall.ts";

/**
 * The few filesystem operations cgroup management needs. Kept behind an interface so the conversion and
 * ordering logic can be tested without root against an in-memory fake.
 */
export interface CgroupFs {
  /** Creates one directory; resolves false when it already existed. */
  mkdir(path: string): Promise<boolean>;
  /** Removes one (cgroup) directory. Rejects with the errno (EBUSY, ENOTEMPTY, ENOENT) in `code`. */
  rmdir(path: string): Promise<void>;
  /** Writes a whole value to an existing control file (never creates files). */
  write(path: string, value: string): Promise<void>;
  read(path: string): Promise<string>;
  exists(path: string): Promise<boolean>;
  /** Names of the sub-directories (child cgroups) of a directory. */
  listDirs(path: string): Promise<string[]>;
  /** An O_RDONLY|O_DIRECTORY|O_CLOEXEC descriptor, for clone3(CLONE_INTO_CGROUP). */
  openDirectory(path: string): number;
  /** Loads an eBPF device program (cgroup v2's replacement for devices.allow/deny) and attaches it to `path`. */
  attachDeviceProgram(path: string, program: Uint8Array): void;
}

export function errnoOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

export const nodeCgroupFs: CgroupFs = {
  async mkdir(path) {
    try {
      await mkdir(path);
      return true;
    } catch (err) {
      if (errnoOf(err) === "EEXIST") return false;
      throw err;
    }
  },
  rmdir: (path) => rmdir(path),
  // "r+" opens O_WRONLY-ish without O_CREAT: a missing control file is ENOENT, not an attempt to create one.
  write: (path, value) => writeFile(path, value, { flag: "r+" }),
  read: (path) => readFile(path, "utf8"),
  async exists(path) {
    try {
      await access(path);
      return true;
    } catch {
      return false;
    }
  },
  async listDirs(path) {
    const entries = await readdir(path, { withFileTypes: true });
    return entries.filter((e) => e.isDirectory()).map((e) => e.name);
  },
  // Bun opens every descriptor O_CLOEXEC, so the fd cannot leak into the container.
  openDirectory: (path) => openSync(path, constants.O_RDONLY | constants.O_DIRECTORY),
  attachDeviceProgram(path, program) {
    const fd = openSync(path, constants.O_RDONLY | constants.O_DIRECTORY);
    try {
      attachDeviceProgram(fd, program);
    } finally {
      closeSync(fd);
    }
  },
};
