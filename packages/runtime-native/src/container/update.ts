import { MagikError } from "@magikrun/spec/errors";
import type { Resources } from "@magikrun/spec/runtime-config";
import { cgroupLayout, syncCgroupFs } from "../cgroup-sync-fs.ts";
import { openCgroup, updateCgroup } from "../cgroups/index.ts";
import type { RuntimeContext } from "./context.ts";

/**
 * `runc update`: applies new resource limits to a live container's cgroup, then records them in its stored
 * config, so that the next update and `events --stats` start from what the cgroup really holds.
 */
export async function updateContainer(ctx: RuntimeContext, id: string, resources: Resources): Promise<void> {
  const { store } = ctx;
  await store.withContainerLock(id, async () => {
    const stored = store.read(id);
    const status = store.status(stored);
    // As runc: a stopped container's cgroup is gone or about to be, so there is nothing to update.
    if (status === "stopped") {
      throw new MagikError(
        "InvalidState",
        `container ${id} is stopped; only a live container can be updated`,
        {
          details: { id, status },
          hint: "Update a created, running or paused container; a stopped one can only be deleted.",
        },
      );
    }
    if (!stored.cgroup) {
      throw new MagikError("NotSupported", `container ${id} has no cgroup to update`, { details: { id } });
    }
    await updateCgroup(
      openCgroup(stored.cgroup, syncCgroupFs),
      withBothCpuHalves(resources, stored.config.linux?.resources),
      { layout: cgroupLayout(), onWarning: ctx.warn },
      syncCgroupFs,
    );
    const linux = stored.config.linux ?? {};
    store.write({
      ...stored,
      config: {
        ...stored.config,
        linux: { ...linux, resources: mergeResources(linux.resources, resources) },
      },
    });
  });
}

/**
 * cgroup v2 sets quota and period in one file (cpu.max), so an update naming only one of them would reset the
 * other to its default. As runc does for every driver, the missing half is the container's current one.
 */
function withBothCpuHalves(update: Resources, current: Resources | undefined): Resources {
  const quota = update.cpu?.quota ?? 0;
  const period = update.cpu?.period ?? 0;
  if ((quota === 0) === (period === 0)) return update;
  const cpu = { ...update.cpu };
  if (quota === 0 && current?.cpu?.quota) cpu.quota = current.cpu.quota;
  if (period === 0 && current?.cpu?.period) cpu.period = current.cpu.period;
  return { ...update, cpu };
}

type Group = Record<string, unknown>;

/** Values that leave a setting alone (and were therefore not written), as the planner reads them. */
const isLeftAlone = (key: string, value: unknown) =>
  value === undefined || value === "" || (value === 0 && !ZERO_IS_A_VALUE.has(key));
const ZERO_IS_A_VALUE = new Set(["swappiness", "burst", "idle", "classID", "leafWeight"]);

/**
 * The stored resources with an update's values over them, field by field within each group (memory, cpu, ...);
 * lists (hugepage limits, per-device weights and throttles) are replaced whole. Device rules are not updated.
 */
export function mergeResources(old: Resources | undefined, update: Resources): Resources {
  const merged: Group = { ...(old ?? {}) };
  for (const [key, value] of Object.entries(update)) {
    if (key === "devices" || value === undefined) continue;
    if (typeof value === "object" && value !== null && !Array.isArray(value)) {
      const group: Group = { ...((merged[key] as Group | undefined) ?? {}) };
      for (const [field, v] of Object.entries(value as Group)) {
        if (!isLeftAlone(field, v)) group[field] = v;
      }
      merged[key] = group;
    } else {
      merged[key] = value;
    }
  }
  return merged as Resources;
}
