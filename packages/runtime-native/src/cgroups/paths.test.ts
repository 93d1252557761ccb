import { isMagikError } from "@magikrun/spec";
import { describe, expect, it } from "vitest";
import { hybridLayout } from "./fake-fs.ts";
import { directoryOn, leafDirectories, normaliseCgroupsPath } from "./paths.ts";

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return isMagikError(err) ? err.code : "not a MagikError";
  }
  return undefined;
}

describe("normaliseCgroupsPath", () => {
  it("defaults to /magikrun/<id> and normalises", () => {
    expect(normaliseCgroupsPath("abc", undefined)).toBe("/magikrun/abc");
    expect(normaliseCgroupsPath("abc", "")).toBe("/magikrun/abc");
    expect(normaliseCgroupsPath("abc", "//a//b/")).toBe("/a/b");
    expect(normaliseCgroupsPath("abc", "pods/abc")).toBe("pods/abc");
  });

  it("refuses escapes, the root and systemd slice syntax", () => {
    expect(codeOf(() => normaliseCgroupsPath("x", "/a/../../etc"))).toBe("PathTraversal");
    expect(codeOf(() => normaliseCgroupsPath("x", "/"))).toBe("InvalidInput");
    expect(codeOf(() => normaliseCgroupsPath("x", "system.slice:magikrun:x"))).toBe("NotSupported");
  });
});

describe("leafDirectories", () => {
  it("puts absolute paths at the same place in every hierarchy, unified included", () => {
    const dirs = leafDirectories(hybridLayout(), "/magikrun/c1");
    expect(dirs.memory).toBe("/cg/memory/magikrun/c1");
    expect(dirs.cpu).toBe("/cg/cpu,cpuacct/magikrun/c1");
    expect(dirs.cpuacct).toBe(dirs.cpu);
    expect(dirs.unified).toBe("/cg/unified/magikrun/c1");
  });

  it("puts relative paths under the runtime's own cgroup per hierarchy, or under a fixed parent", () => {
    const own = leafDirectories(hybridLayout(), "pods/c1");
    expect(own.memory).toBe("/cg/memory/user.slice/session/pods/c1");
    expect(own.pids).toBe("/cg/pids/pods/c1");
    const fixed = leafDirectories(hybridLayout(), "c1", { kind: "fixed", path: "/parent" });
    expect(fixed.memory).toBe("/cg/memory/parent/c1");
  });

  it("strips a mount's own root (cgroup namespaces)", () => {
    expect(directoryOn({ mountPoint: "/sys/fs/cgroup", root: "/ns" }, "/ns/a")).toBe("/sys/fs/cgroup/a");
    expect(directoryOn({ mountPoint: "/sys/fs/cgroup", root: "/ns" }, "/other")).toBe("/sys/fs/cgroup/other");
  });
});
