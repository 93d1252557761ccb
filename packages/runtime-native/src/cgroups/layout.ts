import { readFile } from "node:fs/promises";

/** Controllers that can appear as v1 hierarchies; other mount options (rw, name=..., xattr) are not controllers. */
export const V1_CONTROLLERS = [
  "cpu",
  "cpuacct",
  "cpuset",
  "memory",
  "devices",
  "freezer",
  "net_cls",
  "net_prio",
  "blkio",
  "perf_event",
  "hugetlb",
  "pids",
  "rdma",
  "misc",
] as const;

export interface CgroupMount {
  /** Where the hierarchy is mounted, e.g. /sys/fs/cgroup/memory. */
  mountPoint: string;
  /** The cgroup the mount shows as its top (not "/" inside a cgroup namespace or for a bind-mounted subtree). */
  root: string;
}

export interface CgroupLayout {
  /** "hybrid": v1 controllers plus a v2 mount (which may hold some controllers, e.g. only hugetlb). */
  mode: "v1" | "v2" | "hybrid" | "none";
  /** v1 controller → its hierarchy. Co-mounted controllers (cpu,cpuacct) share one mount. */
  v1: Record<string, CgroupMount>;
  /** The unified hierarchy and the controllers available at its top. */
  v2?: CgroupMount & { controllers: string[] };
  /** The runtime's own cgroup per v1 controller, and in the unified hierarchy, from /proc/self/cgroup. */
  own: { v1: Record<string, string>; v2?: string };
}

// mountinfo escapes space, tab, newline and backslash as octal.
function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(Number.parseInt(oct, 8)));
}

/** Parses /proc/self/mountinfo text into v1 and v2 cgroup mounts. Later mounts of one controller win. */
export function parseCgroupMounts(mountinfo: string): {
  v1: Record<string, CgroupMount>;
  v2?: CgroupMount;
} {
  const v1: Record<string, CgroupMount> = {};
  let v2: CgroupMount | undefined;
  for (const line of mountinfo.split("\n")) {
    const sep = line.indexOf(" - ");
    if (sep < 0) continue;
    const fields = line.slice(0, sep).split(" ");
    const [fsType, , superOptions = ""] = line.slice(sep + 3).split(" ");
    const root = fields[3];
    const mountPoint = fields[4];
    if (root === undefined || mountPoint === undefined) continue;
    const mount = { mountPoint: unescapeMountField(mountPoint), root: unescapeMountField(root) };
    if (fsType === "cgroup2") {
      v2 = mount;
    } else if (fsType === "cgroup") {
      for (const option of superOptions.split(",")) {
        if ((V1_CONTROLLERS as readonly string[]).includes(option)) v1[option] = mount;
      }
    }
  }
  return v2 === undefined ? { v1 } : { v1, v2 };
}

/** Parses /proc/<pid>/cgroup ("id:controllers:path" lines; id 0 with empty controllers is the unified one). */
export function parseProcCgroup(text: string): { v1: Record<string, string>; v2?: string } {
  const v1: Record<string, string> = {};
  let v2: string | undefined;
  for (const line of text.split("\n")) {
    const first = line.indexOf(":");
    const second = line.indexOf(":", first + 1);
    if (first < 0 || second < 0) continue;
    const controllers = line.slice(first + 1, second);
    const path = line.slice(second + 1);
    if (line.slice(0, first) === "0" && controllers === "") v2 = path;
    else for (const c of controllers.split(",")) if (c !== "") v1[c] = path;
  }
  return v2 === undefined ? { v1 } : { v1, v2 };
}

export function layoutFrom(mountinfo: string, procCgroup: string, v2Controllers: string[]): CgroupLayout {
  const mounts = parseCgroupMounts(mountinfo);
  const own = parseProcCgroup(procCgroup);
  const hasV1 = Object.keys(mounts.v1).length > 0;
  const mode = hasV1 ? (mounts.v2 ? "hybrid" : "v1") : mounts.v2 ? "v2" : "none";
  const layout: CgroupLayout = { mode, v1: mounts.v1, own };
  if (mounts.v2) layout.v2 = { ...mounts.v2, controllers: v2Controllers };
  return layout;
}

/** Reads the host's cgroup layout from /proc/self/mountinfo, /proc/self/cgroup and the v2 root. */
export async function detectCgroupLayout(): Promise<CgroupLayout> {
  const [mountinfo, procCgroup] = await Promise.all([
    readFile("/proc/self/mountinfo", "utf8"),
    readFile("/proc/self/cgroup", "utf8"),
  ]);
  const v2 = parseCgroupMounts(mountinfo).v2;
  let controllers: string[] = [];
  if (v2) {
    const text = await readFile(`${v2.mountPoint}/cgroup.controllers`, "utf8").catch(() => "");
    controllers = text.split(/\s+/).filter((c) => c !== "");
  }
  return layoutFrom(mountinfo, procCgroup, controllers);
}
