import type { Resources } from "@magikrun/spec/runtime-config";
import { ignoredKernelMemory } from "./v1-writes.ts";
import {
  type CgroupWrite,
  checkSwapCoversLimit,
  deviceNumber,
  HUGEPAGE_SIZE,
  invalid,
  memoryValue,
  notSupported,
  type WritePlan,
  write,
} from "./writes.ts";

/** Converters from OCI `linux.resources` (written for v1 semantics) to cgroup v2 files. */

/** v1 cpu.shares [2, 262144] → v2 cpu.weight [1, 10000], the linear mapping runc uses. */
export function sharesToWeight(shares: number): number {
  const clamped = Math.min(Math.max(shares, 2), 262_144);
  return 1 + Math.floor(((clamped - 2) * 9999) / 262_142);
}

/** v1 blkio weight [10, 1000] → v2 io.weight [1, 10000], the linear mapping runc uses. */
export function blkioWeightToIoWeight(weight: number): number {
  const clamped = Math.min(Math.max(weight, 10), 1000);
  return 1 + Math.floor(((clamped - 10) * 9999) / 990);
}

export function v2Memory(r: Resources): WritePlan {
  const m = r.memory ?? {};
  const writes: CgroupWrite[] = [];
  const warnings = ignoredKernelMemory(m);
  const limit = memoryValue("memory.limit", m.limit);
  const swap = memoryValue("memory.swap", m.swap);
  const reservation = memoryValue("memory.reservation", m.reservation);
  checkSwapCoversLimit(limit, swap);
  if (limit !== undefined)
    writes.push(write("memory.limit", "memory", "memory.max", limit === -1 ? "max" : limit));
  if (swap !== undefined) {
    // v2 limits swap alone; OCI's value is memory+swap (v1 memsw), so the memory part is taken off.
    let swapMax: string | number;
    if (swap === -1) swapMax = "max";
    else if (limit === undefined || limit === -1) {
      throw invalid(
        "memory.swap",
        swap,
        "a memory+swap limit on cgroup v2 needs a finite memory.limit",
        "Set linux.resources.memory.limit too, or set swap to -1.",
      );
    } else swapMax = swap - limit;
    writes.push(write("memory.swap", "memory", "memory.swap.max", swapMax));
  }
  if (reservation !== undefined) {
    writes.push(
      write("memory.reservation", "memory", "memory.low", reservation === -1 ? "max" : reservation),
    );
  }
  if (m.swappiness !== undefined) {
    warnings.push("linux.resources.memory.swappiness is ignored: cgroup v2 has no per-cgroup swappiness");
  }
  if (m.disableOOMKiller === true) {
    warnings.push(
      "linux.resources.memory.disableOOMKiller is ignored: cgroup v2 cannot disable the OOM killer",
    );
  }
  return { writes, warnings };
}

export function v2Cpu(r: Resources): WritePlan {
  const c = r.cpu ?? {};
  const writes: CgroupWrite[] = [];
  if (c.shares !== undefined && c.shares !== 0) {
    writes.push(write("cpu.shares", "cpu", "cpu.weight", sharesToWeight(c.shares)));
  }
  const quota = c.quota ?? 0;
  const period = c.period ?? 0;
  if (quota < -1) throw invalid("cpu.quota", quota, "must be -1 (unlimited) or positive microseconds");
  if (quota !== 0 || period !== 0) {
    const field = quota !== 0 ? "cpu.quota" : "cpu.period";
    writes.push(write(field, "cpu", "cpu.max", `${quota > 0 ? quota : "max"} ${period || 100_000}`));
  }
  if (c.burst !== undefined) writes.push(write("cpu.burst", "cpu", "cpu.max.burst", c.burst));
  const realtime = (c.realtimePeriod ?? 0) !== 0 || (c.realtimeRuntime ?? 0) !== 0;
  if (realtime) {
    throw notSupported(
      "cpu.realtimeRuntime",
      { realtimePeriod: c.realtimePeriod, realtimeRuntime: c.realtimeRuntime },
      "cgroup v2 has no real-time CPU budget",
      "Remove cpu.realtimePeriod/realtimeRuntime, or run on a host with the v1 cpu controller.",
    );
  }
  if (c.idle !== undefined) writes.push(write("cpu.idle", "cpu", "cpu.idle", c.idle));
  return { writes, warnings: [] };
}

export function v2Io(r: Resources): WritePlan {
  const b = r.blockIO ?? {};
  const writes: CgroupWrite[] = [];
  const warnings: string[] = [];
  // BFQ takes the v1 range as is; the io controller's own weight needs converting.
  if (b.weight !== undefined) {
    writes.push({
      field: "blockIO.weight",
      controller: "io",
      choices: [
        { file: "io.bfq.weight", value: String(b.weight) },
        { file: "io.weight", value: `default ${blkioWeightToIoWeight(b.weight)}` },
      ],
    });
  }
  if (b.leafWeight !== undefined) warnings.push("linux.resources.blockIO.leafWeight is ignored on cgroup v2");
  for (const d of b.weightDevice ?? []) {
    const dev = deviceNumber(d.major, d.minor);
    if (d.weight !== undefined) {
      writes.push({
        field: "blockIO.weightDevice",
        controller: "io",
        choices: [
          { file: "io.bfq.weight", value: `${dev} ${d.weight}` },
          { file: "io.weight", value: `${dev} ${blkioWeightToIoWeight(d.weight)}` },
        ],
      });
    }
    if (d.leafWeight !== undefined)
      warnings.push("linux.resources.blockIO.weightDevice leafWeight is ignored on cgroup v2");
  }
  const throttles = [
    ["throttleReadBpsDevice", "rbps"],
    ["throttleWriteBpsDevice", "wbps"],
    ["throttleReadIOPSDevice", "riops"],
    ["throttleWriteIOPSDevice", "wiops"],
  ] as const;
  for (const [field, key] of throttles) {
    for (const t of b[field] ?? []) {
      // io.max takes one key per write and keeps the others, so limits of one device can be set separately.
      writes.push(
        write(`blockIO.${field}`, "io", "io.max", `${deviceNumber(t.major, t.minor)} ${key}=${t.rate}`),
      );
    }
  }
  return { writes, warnings };
}

export function v2Hugetlb(r: Resources): WritePlan {
  const writes = (r.hugepageLimits ?? []).map((h) => {
    if (!HUGEPAGE_SIZE.test(h.pageSize)) {
      throw invalid("hugepageLimits.pageSize", h.pageSize, "page sizes look like 2MB or 1GB");
    }
    return write("hugepageLimits", "hugetlb", `hugetlb.${h.pageSize}.max`, h.limit);
  });
  return { writes, warnings: [] };
}

const UNIFIED_KEY = /^[a-z_]+\.[a-z0-9_.]+$/;

/** `linux.resources.unified`: raw v2 files, named "<controller>.<file>". */
export function unifiedWrites(r: Resources): WritePlan {
  const writes = Object.entries(r.unified ?? {}).map(([key, value]) => {
    if (!UNIFIED_KEY.test(key)) {
      throw invalid(`unified.${key}`, value, "keys are cgroup v2 file names such as memory.high");
    }
    const controller = key.slice(0, key.indexOf("."));
    return write(`unified.${key}`, controller, key, value);
  });
  return { writes, warnings: [] };
}
