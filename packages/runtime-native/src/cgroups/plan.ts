import { MagikError } from "@magikrun/spec/errors";
import type { DeviceCgroupRule, Resources } from "@magikrun/spec/runtime-config";
import type { CgroupLayout } from "./layout.ts";
import {
  cpusetWrites,
  pidsWrites,
  rdmaWrites,
  v1BlockIo,
  v1Cpu,
  v1Devices,
  v1Hugetlb,
  v1Memory,
  v1NetCls,
  v1NetPrio,
} from "./v1-writes.ts";
import { unifiedWrites, v2Cpu, v2Hugetlb, v2Io, v2Memory } from "./v2-writes.ts";
import type { CgroupWrite, WritePlan } from "./writes.ts";

interface Writer {
  controller: string;
  plan(r: Resources): WritePlan;
}

/** One OCI resource group and how each cgroup version expresses it (absent: that version cannot). */
interface ControllerGroup {
  v1: Writer;
  v2?: Writer;
}

const DEVICES: ControllerGroup = { v1: { controller: "devices", plan: v1Devices } };

const GROUPS: ControllerGroup[] = [
  { v1: { controller: "cpuset", plan: cpusetWrites }, v2: { controller: "cpuset", plan: cpusetWrites } },
  { v1: { controller: "memory", plan: v1Memory }, v2: { controller: "memory", plan: v2Memory } },
  { v1: { controller: "cpu", plan: v1Cpu }, v2: { controller: "cpu", plan: v2Cpu } },
  { v1: { controller: "pids", plan: pidsWrites }, v2: { controller: "pids", plan: pidsWrites } },
  { v1: { controller: "blkio", plan: v1BlockIo }, v2: { controller: "io", plan: v2Io } },
  { v1: { controller: "hugetlb", plan: v1Hugetlb }, v2: { controller: "hugetlb", plan: v2Hugetlb } },
  { v1: { controller: "net_cls", plan: v1NetCls } },
  { v1: { controller: "net_prio", plan: v1NetPrio } },
  { v1: { controller: "rdma", plan: rdmaWrites }, v2: { controller: "rdma", plan: rdmaWrites } },
];

/** A write bound to the hierarchy that holds its controller: a v1 controller name, or "unified". */
export interface PlannedWrite extends CgroupWrite {
  hierarchy: string;
}

export interface ResourcePlan {
  writes: PlannedWrite[];
  /** Device rules to enforce with an eBPF program on the v2 cgroup (hosts without the v1 devices controller). */
  v2DeviceRules?: DeviceCgroupRule[];
  /** v2 controllers the writes need enabled down to the container's cgroup. */
  v2Controllers: string[];
  warnings: string[];
}

function hostOf(layout: CgroupLayout, group: ControllerGroup): "v1" | "v2" | undefined {
  if (layout.v1[group.v1.controller]) return "v1";
  if (group.v2 && layout.v2?.controllers.includes(group.v2.controller)) return "v2";
  return undefined;
}

function missingController(layout: CgroupLayout, group: ControllerGroup, writes: CgroupWrite[]): MagikError {
  const names = group.v2 ? `${group.v1.controller} (v1) / ${group.v2.controller} (v2)` : group.v1.controller;
  const fields = [...new Set(writes.map((w) => `linux.resources.${w.field}`))];
  return new MagikError("NotSupported", `cgroup controller ${names} is not available on this host`, {
    details: { controller: group.v2?.controller ?? group.v1.controller, fields, cgroupMode: layout.mode },
    hint: `Remove ${fields.join(", ")} from the config, or enable the controller on the host.`,
  });
}

function unifiedPlan(layout: CgroupLayout, r: Resources): PlannedWrite[] {
  const { writes } = unifiedWrites(r);
  for (const w of writes) {
    const available = w.controller === "cgroup" || layout.v2?.controllers.includes(w.controller) === true;
    if (!available) {
      const where = layout.v1[w.controller] ? "is bound to a cgroup v1 hierarchy" : "is not available";
      throw new MagikError(
        "NotSupported",
        `linux.resources.${w.field}: v2 controller ${w.controller} ${where}`,
        {
          details: { field: `linux.resources.${w.field}`, controller: w.controller, cgroupMode: layout.mode },
          hint: "linux.resources.unified only works for controllers of the cgroup v2 hierarchy.",
        },
      );
    }
  }
  return writes.map((w) => ({ ...w, hierarchy: "unified" }));
}

/**
 * Turns `linux.resources` into ordered writes for this host: each group goes to the hierarchy holding its
 * controller (v1 first, as runc does on hybrid hosts), and a group the host cannot enforce is an error.
 */
export function planResources(layout: CgroupLayout, r: Resources): ResourcePlan {
  const writes: PlannedWrite[] = [];
  const warnings: string[] = [];
  const v2Controllers = new Set<string>();
  for (const group of GROUPS) {
    const host = hostOf(layout, group);
    if (host === undefined) {
      const wanted = group.v1.plan(r);
      if (wanted.writes.length > 0) throw missingController(layout, group, wanted.writes);
      warnings.push(...wanted.warnings);
      continue;
    }
    const writer = host === "v1" ? group.v1 : group.v2!;
    const planned = writer.plan(r);
    warnings.push(...planned.warnings);
    for (const w of planned.writes)
      writes.push({ ...w, hierarchy: host === "v1" ? w.controller : "unified" });
    if (host === "v2" && planned.writes.length > 0) v2Controllers.add(writer.controller);
  }
  // Devices have no v2 files: without the v1 controller the rules become a BPF program on the v2 cgroup.
  let v2DeviceRules: DeviceCgroupRule[] | undefined;
  if (layout.v1.devices) {
    for (const w of v1Devices(r).writes) writes.push({ ...w, hierarchy: "devices" });
  } else if ((r.devices ?? []).length > 0) {
    if (!layout.v2) throw missingController(layout, DEVICES, v1Devices(r).writes);
    v2DeviceRules = r.devices;
  }
  for (const w of unifiedPlan(layout, r)) {
    writes.push(w);
    if (w.controller !== "cgroup") v2Controllers.add(w.controller);
  }
  return { writes, v2Controllers: [...v2Controllers], warnings, ...(v2DeviceRules ? { v2DeviceRules } : {}) };
}
