import type { DeviceCgroupRule, Resources } from "@magikrun/spec/runtime-config";
import {
  type CgroupWrite,
  checkSwapCoversLimit,
  deviceNumber,
  HUGEPAGE_SIZE,
  invalid,
  memoryValue,
  type WritePlan,
  write,
} from "./writes.ts";

/** Converters from OCI `linux.resources` to cgroup v1 files, one per controller group. */

export function v1Memory(r: Resources): WritePlan {
  const m = r.memory ?? {};
  const writes: CgroupWrite[] = [];
  const warnings: string[] = [];
  const limit = memoryValue("memory.limit", m.limit);
  const swap = memoryValue("memory.swap", m.swap);
  const reservation = memoryValue("memory.reservation", m.reservation);
  checkSwapCoversLimit(limit, swap);
  // The kernel refuses memsw below the memory limit, so the memory limit is written first.
  if (limit !== undefined) writes.push(write("memory.limit", "memory", "memory.limit_in_bytes", limit));
  if (swap !== undefined) writes.push(write("memory.swap", "memory", "memory.memsw.limit_in_bytes", swap));
  if (reservation !== undefined) {
    writes.push(write("memory.reservation", "memory", "memory.soft_limit_in_bytes", reservation));
  }
  if (m.swappiness !== undefined) {
    if (m.swappiness > 100) throw invalid("memory.swappiness", m.swappiness, "must be between 0 and 100");
    writes.push(write("memory.swappiness", "memory", "memory.swappiness", m.swappiness));
  }
  if (m.disableOOMKiller === true)
    writes.push(write("memory.disableOOMKiller", "memory", "memory.oom_control", 1));
  warnings.push(...ignoredKernelMemory(m));
  if (m.useHierarchy === false) {
    warnings.push(
      "linux.resources.memory.useHierarchy=false is ignored: the kernel always uses the hierarchy",
    );
  }
  return { writes, warnings };
}

/** Kernel memory limits were removed from the kernel (5.16+ ignores them); runc ignores them too. */
export function ignoredKernelMemory(m: NonNullable<Resources["memory"]>): string[] {
  const warnings: string[] = [];
  if (m.kernel !== undefined && m.kernel !== 0) {
    warnings.push("linux.resources.memory.kernel is ignored: kernel memory limits are deprecated");
  }
  if (m.kernelTCP !== undefined && m.kernelTCP !== 0) {
    warnings.push("linux.resources.memory.kernelTCP is ignored: kernel memory limits are deprecated");
  }
  return warnings;
}

export function v1Cpu(r: Resources): WritePlan {
  const c = r.cpu ?? {};
  const writes: CgroupWrite[] = [];
  if (c.shares !== undefined && c.shares !== 0)
    writes.push(write("cpu.shares", "cpu", "cpu.shares", c.shares));
  // A quota is checked against the current period, so the period goes first.
  if (c.period !== undefined && c.period !== 0) {
    writes.push(write("cpu.period", "cpu", "cpu.cfs_period_us", c.period));
  }
  if (c.quota !== undefined && c.quota !== 0) {
    if (c.quota < -1) throw invalid("cpu.quota", c.quota, "must be -1 (unlimited) or positive microseconds");
    writes.push(write("cpu.quota", "cpu", "cpu.cfs_quota_us", c.quota));
  }
  if (c.burst !== undefined) writes.push(write("cpu.burst", "cpu", "cpu.cfs_burst_us", c.burst));
  if (c.realtimePeriod !== undefined && c.realtimePeriod !== 0) {
    writes.push(write("cpu.realtimePeriod", "cpu", "cpu.rt_period_us", c.realtimePeriod));
  }
  if (c.realtimeRuntime !== undefined && c.realtimeRuntime !== 0) {
    writes.push(write("cpu.realtimeRuntime", "cpu", "cpu.rt_runtime_us", c.realtimeRuntime));
  }
  if (c.idle !== undefined) writes.push(write("cpu.idle", "cpu", "cpu.idle", c.idle));
  return { writes, warnings: [] };
}

/** cpuset is the same two files in v1 and v2. */
export function cpusetWrites(r: Resources): WritePlan {
  const c = r.cpu ?? {};
  const writes: CgroupWrite[] = [];
  if (c.cpus !== undefined && c.cpus !== "") writes.push(write("cpu.cpus", "cpuset", "cpuset.cpus", c.cpus));
  if (c.mems !== undefined && c.mems !== "") writes.push(write("cpu.mems", "cpuset", "cpuset.mems", c.mems));
  return { writes, warnings: [] };
}

/** pids.max is the same in v1 and v2; a negative limit means unlimited and 0 leaves it alone. */
export function pidsWrites(r: Resources): WritePlan {
  const limit = r.pids?.limit;
  if (limit === undefined || limit === 0) return { writes: [], warnings: [] };
  return { writes: [write("pids.limit", "pids", "pids.max", limit > 0 ? limit : "max")], warnings: [] };
}

export function v1BlockIo(r: Resources): WritePlan {
  const b = r.blockIO ?? {};
  const writes: CgroupWrite[] = [];
  // Kernels without CFQ have no blkio.weight; BFQ's file takes the same 10-1000 range.
  if (b.weight !== undefined) {
    const value = String(b.weight);
    writes.push({
      field: "blockIO.weight",
      controller: "blkio",
      choices: [
        { file: "blkio.weight", value },
        { file: "blkio.bfq.weight", value },
      ],
    });
  }
  if (b.leafWeight !== undefined) {
    writes.push(write("blockIO.leafWeight", "blkio", "blkio.leaf_weight", b.leafWeight));
  }
  for (const d of b.weightDevice ?? []) {
    const dev = deviceNumber(d.major, d.minor);
    if (d.weight !== undefined) {
      const value = `${dev} ${d.weight}`;
      writes.push({
        field: "blockIO.weightDevice",
        controller: "blkio",
        choices: [
          { file: "blkio.weight_device", value },
          { file: "blkio.bfq.weight_device", value },
        ],
      });
    }
    if (d.leafWeight !== undefined) {
      writes.push(
        write("blockIO.weightDevice", "blkio", "blkio.leaf_weight_device", `${dev} ${d.leafWeight}`),
      );
    }
  }
  const throttles = [
    ["throttleReadBpsDevice", "blkio.throttle.read_bps_device"],
    ["throttleWriteBpsDevice", "blkio.throttle.write_bps_device"],
    ["throttleReadIOPSDevice", "blkio.throttle.read_iops_device"],
    ["throttleWriteIOPSDevice", "blkio.throttle.write_iops_device"],
  ] as const;
  for (const [field, file] of throttles) {
    for (const t of b[field] ?? []) {
      writes.push(write(`blockIO.${field}`, "blkio", file, `${deviceNumber(t.major, t.minor)} ${t.rate}`));
    }
  }
  return { writes, warnings: [] };
}

export function checkPageSize(pageSize: string): void {
  if (!HUGEPAGE_SIZE.test(pageSize)) {
    throw invalid("hugepageLimits.pageSize", pageSize, "page sizes look like 2MB or 1GB");
  }
}

export function v1Hugetlb(r: Resources): WritePlan {
  const writes = (r.hugepageLimits ?? []).map((h) => {
    checkPageSize(h.pageSize);
    return write("hugepageLimits", "hugetlb", `hugetlb.${h.pageSize}.limit_in_bytes`, h.limit);
  });
  return { writes, warnings: [] };
}

/** One devices.allow/deny line; a missing or negative major/minor is the wildcard. */
export function deviceRuleLine(rule: DeviceCgroupRule): string {
  const type = rule.type ?? "a";
  const part = (n: number | null | undefined) => (n === undefined || n === null || n < 0 ? "*" : String(n));
  const access = rule.access === undefined || rule.access === "" ? "rwm" : rule.access;
  return `${type} ${part(rule.major)}:${part(rule.minor)} ${access}`;
}

/** Rules are written in order, so later rules refine earlier ones, as the spec requires. */
export function v1Devices(r: Resources): WritePlan {
  const writes = (r.devices ?? []).map((rule) =>
    write("devices", "devices", rule.allow ? "devices.allow" : "devices.deny", deviceRuleLine(rule)),
  );
  return { writes, warnings: [] };
}

export function v1NetCls(r: Resources): WritePlan {
  const id = r.network?.classID;
  return {
    writes: id === undefined ? [] : [write("network.classID", "net_cls", "net_cls.classid", id)],
    warnings: [],
  };
}

export function v1NetPrio(r: Resources): WritePlan {
  const writes = (r.network?.priorities ?? []).map((p) =>
    write("network.priorities", "net_prio", "net_prio.ifpriomap", `${p.name} ${p.priority}`),
  );
  return { writes, warnings: [] };
}

/** rdma.max is the same in v1 and v2. */
export function rdmaWrites(r: Resources): WritePlan {
  const writes: CgroupWrite[] = [];
  for (const [device, limit] of Object.entries(r.rdma ?? {})) {
    const parts = [device];
    if (limit.hcaHandles !== undefined) parts.push(`hca_handle=${limit.hcaHandles}`);
    if (limit.hcaObjects !== undefined) parts.push(`hca_object=${limit.hcaObjects}`);
    if (parts.length > 1) writes.push(write("rdma", "rdma", "rdma.max", parts.join(" ")));
  }
  return { writes, warnings: [] };
}
