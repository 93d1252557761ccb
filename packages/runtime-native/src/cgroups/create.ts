import { posix } from "node:path";
import { MagikError } from "@magikrun/spec/errors";
import type { Resources } from "@magikrun/spec/runtime-config";
import { applyWrite, type ExistsCache } from "./apply-write.ts";
import { deviceAccessModel, deviceFilterProgram } from "./device-filter.ts";
import { type CgroupFs, errnoOf, nodeCgroupFs } from "./fs.ts";
import { CgroupHandle } from "./handle.ts";
import { type CgroupLayout, detectCgroupLayout } from "./layout.ts";
import { leafDirectories, normaliseCgroupsPath, type RelativeBase } from "./paths.ts";
import { planResources, type ResourcePlan } from "./plan.ts";

export interface CreateCgroupOptions {
  /** Container id; names the default cgroup /magikrun/<id>. */
  id: string;
  /** `linux.cgroupsPath`: absolute within each hierarchy, or relative (see `relativeTo`). */
  cgroupsPath?: string | undefined;
  resources?: Resources | undefined;
  /** The host's layout; detected from /proc/self/mountinfo when absent. */
  layout?: CgroupLayout;
  /** Parent cgroup for a relative cgroupsPath; default: the runtime's own cgroup in each hierarchy (as runc). */
  relativeTo?: string;
  /** Receives settings that are accepted but not enforced (they are also on `handle.warnings`). */
  onWarning?: (message: string) => void;
}

/** Every v2 controller a container may want for stats; enabled best effort on pure v2 hosts. */
const V2_STATS_CONTROLLERS = ["cpu", "io", "memory", "pids"];

/** A new v1 cpuset cgroup starts with no CPUs or memory nodes, and no task can join it until they are set. */
async function inheritCpuset(fs: CgroupFs, dir: string): Promise<void> {
  for (const file of ["cpuset.cpus", "cpuset.mems"]) {
    const own = await fs.read(posix.join(dir, file));
    if (own.trim() !== "") continue;
    const parent = await fs.read(posix.join(posix.dirname(dir), file));
    await fs.write(posix.join(dir, file), parent.trim());
  }
}

async function enableV2Controllers(fs: CgroupFs, dir: string, required: string[], optional: string[]) {
  const available = (await fs.read(posix.join(dir, "cgroup.controllers"))).split(/\s+/);
  const enabled = (await fs.read(posix.join(dir, "cgroup.subtree_control"))).split(/\s+/);
  for (const controller of new Set([...required, ...optional])) {
    if (enabled.includes(controller)) continue;
    const isRequired = required.includes(controller);
    if (!available.includes(controller)) {
      if (!isRequired) continue;
      throw new MagikError("NotSupported", `cgroup v2 controller ${controller} is not delegated to ${dir}`, {
        details: { controller, path: dir, available },
        hint: `Enable it in the parent's cgroup.subtree_control, or remove the ${controller} settings.`,
      });
    }
    try {
      await fs.write(posix.join(dir, "cgroup.subtree_control"), `+${controller}`);
    } catch (err) {
      if (isRequired) {
        throw new MagikError("CreateFailed", `cannot enable cgroup v2 controller ${controller} in ${dir}`, {
          cause: err,
          details: { controller, path: dir, errno: errnoOf(err) },
        });
      }
    }
  }
}

interface Hierarchy {
  key: string;
  mountPoint: string;
  leaf: string;
}

/**
 * Creates the container's cgroup in every hierarchy and applies its resources. Nothing is touched before the
 * resources are validated, and anything created is removed again when a later step fails.
 */
/**
 * Where the container's cgroup will be in each hierarchy, with its resources checked against this host: what
 * createCgroup will do, without touching the filesystem. Bad resources fail here, before anything exists.
 */
export function planCgroup(
  options: CreateCgroupOptions,
  layout: CgroupLayout,
): { leaves: Record<string, string>; plan: ResourcePlan } {
  if (layout.mode === "none") {
    throw new MagikError("RuntimeUnavailable", "no cgroup filesystem is mounted", {
      details: { cgroupMode: layout.mode },
      hint: "Mount cgroup2 on /sys/fs/cgroup (or v1 hierarchies) to run native containers.",
    });
  }
  const normalised = normaliseCgroupsPath(options.id, options.cgroupsPath);
  const plan = planResources(layout, options.resources ?? {});
  const base: RelativeBase =
    options.relativeTo === undefined ? { kind: "own" } : { kind: "fixed", path: options.relativeTo };
  return { leaves: leafDirectories(layout, normalised, base), plan };
}

/** `planned`: what planCgroup returned for these options, when the caller needed it earlier. */
export async function createCgroup(
  options: CreateCgroupOptions,
  fs: CgroupFs = nodeCgroupFs,
  planned?: ReturnType<typeof planCgroup>,
): Promise<CgroupHandle> {
  const layout = options.layout ?? (await detectCgroupLayout());
  const { leaves, plan } = planned ?? planCgroup(options, layout);

  const hierarchies: Hierarchy[] = [];
  const seen = new Set<string>();
  for (const [key, leaf] of Object.entries(leaves)) {
    if (seen.has(leaf)) continue;
    seen.add(leaf);
    const mountPoint = key === "unified" ? layout.v2!.mountPoint : layout.v1[key]!.mountPoint;
    hierarchies.push({ key, mountPoint, leaf });
  }

  const created: string[] = [];
  const createdLeaves: string[] = [];
  const handle = () => new CgroupHandle({ paths: leaves, created }, fs, plan.warnings);
  try {
    for (const h of hierarchies) {
      await makeChain(fs, layout, h, plan.v2Controllers, created, createdLeaves);
    }
    const exists: ExistsCache = new Map();
    for (const w of plan.writes) await applyWrite(fs, leaves[w.hierarchy]!, w, exists);
    if (plan.v2DeviceRules) {
      fs.attachDeviceProgram(leaves.unified!, deviceFilterProgram(deviceAccessModel(plan.v2DeviceRules)));
    }
  } catch (err) {
    // Only what this call made is removed: a leaf that already existed belongs to someone else.
    const cleanup = new CgroupHandle({ paths: {}, created: [...created, ...createdLeaves] }, fs);
    await cleanup.destroy({ timeoutMs: 1_000 }).catch(() => {});
    throw err;
  }
  for (const warning of plan.warnings) options.onWarning?.(warning);
  return handle();
}

async function makeChain(
  fs: CgroupFs,
  layout: CgroupLayout,
  h: Hierarchy,
  v2Required: string[],
  created: string[],
  createdLeaves: string[],
): Promise<void> {
  const isV2 = h.key === "unified";
  const isCpuset = !isV2 && layout.v1.cpuset?.mountPoint === h.mountPoint;
  let leafIsNew: boolean;
  if (!isV2) {
    // v1 parents need nothing but to exist: one mkdir of the leaf is enough when they do (the usual case).
    leafIsNew = await mkdirLeafOrChain(fs, h, created, isCpuset);
    if (leafIsNew) createdLeaves.push(h.leaf);
    if (isCpuset) await inheritCpuset(fs, h.leaf);
  } else {
    // v2: every ancestor must delegate the controllers to its children, so the whole chain is walked.
    const parts = posix.relative(h.mountPoint, h.leaf).split("/");
    const optional = layout.mode === "v2" ? V2_STATS_CONTROLLERS : [];
    let dir = h.mountPoint;
    leafIsNew = false;
    for (const [i, part] of parts.entries()) {
      await enableV2Controllers(fs, dir, v2Required, optional);
      dir = posix.join(dir, part);
      const isLeaf = i === parts.length - 1;
      const made = await mkdirRetrying(fs, dir);
      if (made) (isLeaf ? createdLeaves : created).push(dir);
      if (isLeaf) leafIsNew = made;
    }
  }
  // A directory made just now holds no process; an existing one may be another container's.
  if (leafIsNew) return;
  const procs = await fs.read(posix.join(h.leaf, "cgroup.procs"));
  if (procs.trim() !== "") {
    throw new MagikError("InvalidState", `cgroup ${h.leaf} already holds processes`, {
      details: { path: h.leaf, pids: procs.trim().split("\n").map(Number) },
      hint: "Another container uses this cgroupsPath; give this container its own.",
    });
  }
}

/** mkdir of a v1 leaf, making the missing parents first when it fails with ENOENT; true if the leaf is new. */
async function mkdirLeafOrChain(fs: CgroupFs, h: Hierarchy, created: string[], isCpuset: boolean) {
  try {
    return await fs.mkdir(h.leaf);
  } catch (err) {
    if (errnoOf(err) !== "ENOENT") return mkdirRetrying(fs, h.leaf);
  }
  let dir = h.mountPoint;
  const parts = posix.relative(h.mountPoint, h.leaf).split("/");
  for (const part of parts.slice(0, -1)) {
    dir = posix.join(dir, part);
    if (await mkdirRetrying(fs, dir)) created.push(dir);
    if (isCpuset) await inheritCpuset(fs, dir);
  }
  return mkdirRetrying(fs, h.leaf);
}

// A concurrent destroy may remove a shared parent between our mkdir calls; the chain is then made again.
async function mkdirRetrying(fs: CgroupFs, dir: string): Promise<boolean> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fs.mkdir(dir);
    } catch (err) {
      if (errnoOf(err) !== "ENOENT" || attempt >= 3) {
        throw new MagikError("CreateFailed", `cannot create cgroup ${dir}: ${errnoOf(err) ?? String(err)}`, {
          cause: err,
          details: { path: dir, errno: errnoOf(err) },
        });
      }
      await mkdirRetrying(fs, posix.dirname(dir));
    }
  }
}
