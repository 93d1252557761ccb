import { posix } from "node:path";
import type { CgroupFs } from "./fs.ts";

/** Usage figures for `events --stats`. A limit of null means unlimited. */
export interface CgroupStats {
  memory?: { usage: number; limit: number | null; maxUsage?: number; failcnt?: number; oomKills?: number };
  pids?: { current: number; limit: number | null };
  cpu?: { usageNs: number; userNs?: number; systemNs?: number };
}

// v1 reports "unlimited" as a huge page-aligned number (PAGE_COUNTER_MAX * page size).
const V1_UNLIMITED = 2 ** 62;

function parseLimit(text: string): number | null {
  const t = text.trim();
  if (t === "max") return null;
  const n = Number(t);
  return n >= V1_UNLIMITED ? null : n;
}

function keyed(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    const [key, value] = line.trim().split(/\s+/);
    if (key !== undefined && value !== undefined) out.set(key, Number(value));
  }
  return out;
}

async function readOr(fs: CgroupFs, dir: string | undefined, file: string): Promise<string | undefined> {
  if (dir === undefined) return undefined;
  return fs.read(posix.join(dir, file)).catch(() => undefined);
}

async function memoryStats(paths: Record<string, string>, fs: CgroupFs): Promise<CgroupStats["memory"]> {
  const v1 = paths.memory;
  const usage = await readOr(fs, v1, "memory.usage_in_bytes");
  if (usage !== undefined) {
    const limit = await readOr(fs, v1, "memory.limit_in_bytes");
    const max = await readOr(fs, v1, "memory.max_usage_in_bytes");
    const failcnt = await readOr(fs, v1, "memory.failcnt");
    const oom = keyed((await readOr(fs, v1, "memory.oom_control")) ?? "").get("oom_kill");
    return {
      usage: Number(usage),
      limit: limit === undefined ? null : parseLimit(limit),
      ...(max === undefined ? {} : { maxUsage: Number(max) }),
      ...(failcnt === undefined ? {} : { failcnt: Number(failcnt) }),
      ...(oom === undefined ? {} : { oomKills: oom }),
    };
  }
  const current = await readOr(fs, paths.unified, "memory.current");
  if (current === undefined) return undefined;
  const limit = await readOr(fs, paths.unified, "memory.max");
  const peak = await readOr(fs, paths.unified, "memory.peak");
  const oom = keyed((await readOr(fs, paths.unified, "memory.events")) ?? "").get("oom_kill");
  return {
    usage: Number(current),
    limit: limit === undefined ? null : parseLimit(limit),
    ...(peak === undefined ? {} : { maxUsage: Number(peak) }),
    ...(oom === undefined ? {} : { oomKills: oom }),
  };
}

async function pidsStats(paths: Record<string, string>, fs: CgroupFs): Promise<CgroupStats["pids"]> {
  for (const dir of [paths.pids, paths.unified]) {
    const current = await readOr(fs, dir, "pids.current");
    if (current === undefined) continue;
    const limit = await readOr(fs, dir, "pids.max");
    return { current: Number(current), limit: limit === undefined ? null : parseLimit(limit) };
  }
  return undefined;
}

async function cpuStats(paths: Record<string, string>, fs: CgroupFs): Promise<CgroupStats["cpu"]> {
  const usage = await readOr(fs, paths.cpuacct, "cpuacct.usage");
  if (usage !== undefined) {
    const user = await readOr(fs, paths.cpuacct, "cpuacct.usage_user");
    const sys = await readOr(fs, paths.cpuacct, "cpuacct.usage_sys");
    return {
      usageNs: Number(usage),
      ...(user === undefined ? {} : { userNs: Number(user) }),
      ...(sys === undefined ? {} : { systemNs: Number(sys) }),
    };
  }
  const stat = await readOr(fs, paths.unified, "cpu.stat");
  if (stat === undefined) return undefined;
  const fields = keyed(stat);
  const usec = fields.get("usage_usec");
  if (usec === undefined) return undefined;
  const user = fields.get("user_usec");
  const sys = fields.get("system_usec");
  return {
    usageNs: usec * 1000,
    ...(user === undefined ? {} : { userNs: user * 1000 }),
    ...(sys === undefined ? {} : { systemNs: sys * 1000 }),
  };
}

export async function readStats(paths: Record<string, string>, fs: CgroupFs): Promise<CgroupStats> {
  const [memory, pids, cpu] = await Promise.all([
    memoryStats(paths, fs),
    pidsStats(paths, fs),
    cpuStats(paths, fs),
  ]);
  return { ...(memory ? { memory } : {}), ...(pids ? { pids } : {}), ...(cpu ? { cpu } : {}) };
}
