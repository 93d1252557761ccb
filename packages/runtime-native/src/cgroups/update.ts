import { posix } from "node:path";
import { MagikError } from "@magikrun/spec/errors";
import type { Resources } from "@magikrun/spec/runtime-config";
import { type ChosenFile, chooseFile, type ExistsCache, writeChosen } from "./apply-write.ts";
import { type CgroupFs, nodeCgroupFs } from "./fs.ts";
import type { CgroupHandle } from "./handle.ts";
import { type CgroupLayout, detectCgroupLayout } from "./layout.ts";
import { type PlannedWrite, planResources } from "./plan.ts";

export interface UpdateCgroupOptions {
  /** The host's layout; detected from /proc/self/mountinfo when absent. */
  layout?: CgroupLayout;
  /** Receives settings that are accepted but not enforced. */
  onWarning?: (message: string) => void;
}

interface Step {
  w: PlannedWrite;
  dir: string;
  chosen: ChosenFile;
}

const LIMIT = "memory.limit_in_bytes";
const MEMSW = "memory.memsw.limit_in_bytes";
/** Above any real limit: what -1 (unlimited) compares as. */
const UNLIMITED = 2n ** 63n;
const PAGE = 4096n;

// Files whose read-back value can be written again as is, so that a later refused write can undo them. Keyed
// files (weight_device, throttles, ifpriomap, io.max, rdma.max) read back in another shape and are not undone.
const RESTORABLE = new Set([
  LIMIT,
  MEMSW,
  "memory.soft_limit_in_bytes",
  "memory.swappiness",
  "memory.max",
  "memory.swap.max",
  "memory.high",
  "memory.low",
  "memory.min",
  "cpu.shares",
  "cpu.cfs_period_us",
  "cpu.cfs_quota_us",
  "cpu.cfs_burst_us",
  "cpu.rt_period_us",
  "cpu.rt_runtime_us",
  "cpu.idle",
  "cpu.weight",
  "cpu.max",
  "cpuset.cpus",
  "cpuset.mems",
  "pids.max",
  "blkio.weight",
  "blkio.leaf_weight",
  "net_cls.classid",
]);
const isRestorable = (file: string) =>
  RESTORABLE.has(file) || /^hugetlb\.[^.]+\.(limit_in_bytes|max)$/.test(file);

/**
 * Applies new `linux.resources` values to a container's existing cgroup, as `runc update` does. Only the
 * fields present are written (0 and absent leave a value alone, as at create). Everything that can be checked
 * is checked before the first write; if the kernel still refuses a value, the values already written by this
 * call are put back, so a failed update leaves the cgroup as it was wherever the files allow it.
 */
export async function updateCgroup(
  handle: CgroupHandle,
  resources: Resources,
  options: UpdateCgroupOptions = {},
  fs: CgroupFs = nodeCgroupFs,
): Promise<void> {
  const layout = options.layout ?? (await detectCgroupLayout());
  // runc update never rewrites device rules (an update cannot express them): they stay as created.
  const { devices: _devices, ...rest } = resources;
  const r = await unlimitedSwapWithUnlimitedMemory(fs, handle, layout, rest);
  const plan = planResources(layout, r);

  const cache: ExistsCache = new Map();
  const steps: Step[] = [];
  for (const w of plan.writes) {
    const dir = handle.paths[w.hierarchy];
    if (dir === undefined) {
      throw new MagikError(
        "NotSupported",
        `linux.resources.${w.field}: the container's cgroup has no ${w.hierarchy} hierarchy`,
        {
          details: { field: `linux.resources.${w.field}`, hierarchy: w.hierarchy, paths: handle.paths },
          hint: "The container was created without this controller; it cannot be limited after the fact.",
        },
      );
    }
    steps.push({ w, dir, chosen: await chooseFile(fs, dir, w, cache) });
  }
  await orderV1Memory(fs, steps);

  const undo: { path: string; value: string }[] = [];
  for (const step of steps) {
    const path = posix.join(step.dir, step.chosen.file);
    const old = isRestorable(step.chosen.file) ? await readValue(fs, path) : undefined;
    try {
      // EBUSY: a memory limit below what the cgroup uses and cannot reclaim, a value the kernel refuses.
      await writeChosen(fs, step.dir, step.w, step.chosen, {
        failCode: "Internal",
        refused: ["EINVAL", "ERANGE", "EOVERFLOW", "EBUSY"],
      });
    } catch (err) {
      // Newest first: each earlier write was valid against the values before it, so undoing in reverse is too.
      for (const u of undo.reverse()) await fs.write(u.path, u.value).catch(() => {});
      throw err;
    }
    if (old !== undefined && old !== "") undo.push({ path, value: old });
  }
  for (const warning of plan.warnings) options.onWarning?.(warning);
}

/** As runc: an unlimited memory limit with no swap given makes memory+swap unlimited too, where v1 has memsw. */
async function unlimitedSwapWithUnlimitedMemory(
  fs: CgroupFs,
  handle: CgroupHandle,
  layout: CgroupLayout,
  r: Resources,
): Promise<Resources> {
  const m = r.memory;
  const dir = handle.paths.memory;
  if (m?.limit !== -1 || (m.swap !== undefined && m.swap !== 0) || !layout.v1.memory || dir === undefined) {
    return r;
  }
  if (!(await fs.exists(posix.join(dir, MEMSW)))) return r;
  return { ...r, memory: { ...m, swap: -1 } };
}

async function readValue(fs: CgroupFs, path: string): Promise<string | undefined> {
  try {
    return (await fs.read(path)).trim();
  } catch {
    return undefined;
  }
}

/** A v1 memory value in whole pages (the kernel rounds down), -1 as unlimited; undefined if unreadable. */
function pagesOf(text: string | undefined): bigint | undefined {
  if (text === undefined || !/^-?\d+$/.test(text.trim())) return undefined;
  const bytes = BigInt(text.trim());
  return bytes < 0n ? UNLIMITED : bytes / PAGE;
}

/**
 * v1 requires memory.limit <= memory.memsw.limit at every moment, so the order of the two writes depends on
 * the current values (runc's rule): when the new memory+swap is above the current memory limit (or unlimited),
 * memsw goes first, else the memory limit goes first. A single one of the two that cannot fit the other's
 * current value is refused here, before anything is written.
 */
async function orderV1Memory(fs: CgroupFs, steps: Step[]): Promise<void> {
  const limitAt = steps.findIndex((s) => s.w.hierarchy === "memory" && s.chosen.file === LIMIT);
  const swapAt = steps.findIndex((s) => s.w.hierarchy === "memory" && s.chosen.file === MEMSW);
  if (limitAt < 0 && swapAt < 0) return;
  const dir = steps[limitAt >= 0 ? limitAt : swapAt]!.dir;
  const currentLimit = pagesOf(await readValue(fs, posix.join(dir, LIMIT)));
  if (limitAt >= 0 && swapAt >= 0) {
    const newSwap = pagesOf(steps[swapAt]!.chosen.value);
    if (currentLimit !== undefined && newSwap !== undefined && newSwap > currentLimit && swapAt > limitAt) {
      const [swap] = steps.splice(swapAt, 1);
      steps.splice(limitAt, 0, swap!);
    }
    return;
  }
  if (limitAt >= 0) {
    const step = steps[limitAt]!;
    const currentSwap = pagesOf(await readValue(fs, posix.join(dir, MEMSW)));
    const newLimit = pagesOf(step.chosen.value);
    if (currentSwap !== undefined && newLimit !== undefined && newLimit > currentSwap) {
      throw memoryOrderError(step, "memory.swap", currentSwap, "above the current memory+swap limit");
    }
    return;
  }
  const step = steps[swapAt]!;
  const newSwap = pagesOf(step.chosen.value);
  if (currentLimit !== undefined && newSwap !== undefined && newSwap < currentLimit) {
    throw memoryOrderError(step, "memory.limit", currentLimit, "below the current memory limit");
  }
}

function memoryOrderError(step: Step, other: string, currentPages: bigint, why: string): MagikError {
  const current = currentPages === UNLIMITED ? "unlimited" : String(currentPages * PAGE);
  return new MagikError(
    "InvalidInput",
    `linux.resources.${step.w.field} = ${step.chosen.value} is ${why} (${current})`,
    {
      details: {
        field: `linux.resources.${step.w.field}`,
        file: step.chosen.file,
        value: step.chosen.value,
        path: step.dir,
        current,
      },
      hint: `cgroup v1 needs memory <= memory+swap: set linux.resources.${other} in the same update (or -1).`,
    },
  );
}
