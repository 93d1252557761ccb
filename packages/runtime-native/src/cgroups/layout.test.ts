import { describe, expect, it } from "vitest";
import { layoutFrom, parseCgroupMounts, parseProcCgroup } from "./layout.ts";

const HYBRID_MOUNTINFO = `30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 30 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
50 22 0:40 /sub /mnt/odd\\040dir rw - cgroup cgroup rw,pids`;

describe("parseCgroupMounts", () => {
  it("maps each v1 controller to its hierarchy, co-mounted ones to the same mount", () => {
    const { v1, v2 } = parseCgroupMounts(HYBRID_MOUNTINFO);
    expect(v1.cpu).toEqual({ mountPoint: "/sys/fs/cgroup/cpu,cpuacct", root: "/" });
    expect(v1.cpuacct).toEqual(v1.cpu);
    expect(v1.memory?.mountPoint).toBe("/sys/fs/cgroup/memory");
    expect(Object.keys(v1)).not.toContain("name=systemd");
    expect(v2).toEqual({ mountPoint: "/sys/fs/cgroup/unified", root: "/" });
  });

  it("unescapes mount points and keeps the mount root", () => {
    expect(parseCgroupMounts(HYBRID_MOUNTINFO).v1.pids).toEqual({ mountPoint: "/mnt/odd dir", root: "/sub" });
  });
});

describe("parseProcCgroup", () => {
  it("reads v1 controllers (co-mounted too) and the unified line", () => {
    const own = parseProcCgroup("4:memory:/a/b\n2:cpu,cpuacct:/\n1:name=systemd:/x\n0::/user.slice\n");
    expect(own.v1).toEqual({ memory: "/a/b", cpu: "/", cpuacct: "/", "name=systemd": "/x" });
    expect(own.v2).toBe("/user.slice");
  });
});

describe("layoutFrom", () => {
  it("tells v1, v2 and hybrid hosts apart", () => {
    expect(layoutFrom(HYBRID_MOUNTINFO, "", ["hugetlb"]).mode).toBe("hybrid");
    const v2only = "40 30 0:37 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw";
    const v2 = layoutFrom(v2only, "0::/\n", ["memory", "pids"]);
    expect(v2.mode).toBe("v2");
    expect(v2.v2?.controllers).toEqual(["memory", "pids"]);
    expect(layoutFrom("", "", []).mode).toBe("none");
    const v1only = HYBRID_MOUNTINFO.split("\n")
      .filter((l) => !l.includes("cgroup2"))
      .join("\n");
    expect(layoutFrom(v1only, "", []).mode).toBe("v1");
  });
});
