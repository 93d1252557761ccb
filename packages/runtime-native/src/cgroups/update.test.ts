import { rejectedMagikError } from "@magikrun/spec/test-support";
import { describe, expect, it } from "vitest";
import { createCgroup } from "./create.ts";
import { type FakeCgroupFs, fakeFsFor, hybridLayout, v1Layout, v2Layout } from "./fake-fs.ts";
import type { CgroupLayout } from "./layout.ts";
import { updateCgroup } from "./update.ts";

const MB = 1024 * 1024;
const MEM = "/cg/memory/magikrun/u1";

/** A created container cgroup, with the fake kernel's current memory values set and the write log cleared. */
async function setup(layout: CgroupLayout = v1Layout(), memory?: { limit: number; memsw: number }) {
  const fs = fakeFsFor(layout);
  const cg = await createCgroup({ id: "u1", layout }, fs);
  if (memory) {
    fs.files.set(`${MEM}/memory.limit_in_bytes`, `${memory.limit}\n`);
    fs.files.set(`${MEM}/memory.memsw.limit_in_bytes`, `${memory.memsw}\n`);
  }
  fs.writes.length = 0;
  return { fs, cg, layout };
}

/** The fake kernel's v1 rule: memory.limit <= memory.memsw.limit after every write. */
function enforceMemsw(fs: FakeCgroupFs): void {
  fs.failWrite = (path, value) => {
    const dir = path.slice(0, path.lastIndexOf("/"));
    const bytes = (text: string | undefined) => (Number(text) < 0 ? Number.MAX_SAFE_INTEGER : Number(text));
    const limit = bytes(fs.files.get(`${dir}/memory.limit_in_bytes`));
    const memsw = bytes(fs.files.get(`${dir}/memory.memsw.limit_in_bytes`));
    const v = bytes(value);
    if (path.endsWith("/memory.limit_in_bytes") && v > memsw) return "EINVAL";
    if (path.endsWith("/memory.memsw.limit_in_bytes") && v < limit) return "EINVAL";
    return undefined;
  };
}

describe("updateCgroup (fake fs)", () => {
  it("writes only the fields given, into the container's existing directories", async () => {
    const { fs, cg, layout } = await setup();
    await updateCgroup(cg, { pids: { limit: 20 }, cpu: { quota: 50_000, period: 100_000 } }, { layout }, fs);
    expect(fs.writes).toEqual([
      ["/cg/cpu,cpuacct/magikrun/u1/cpu.cfs_period_us", "100000"],
      ["/cg/cpu,cpuacct/magikrun/u1/cpu.cfs_quota_us", "50000"],
      ["/cg/pids/magikrun/u1/pids.max", "20"],
    ]);
    expect(fs.dirs.has("/cg/memory/magikrun/u2")).toBe(false);
  });

  it("never touches device rules (runc update does not either)", async () => {
    const { fs, cg, layout } = await setup();
    await updateCgroup(
      cg,
      { devices: [{ allow: false, access: "rwm" }], pids: { limit: 5 } },
      { layout },
      fs,
    );
    expect(fs.writes.map(([p]) => p)).toEqual(["/cg/pids/magikrun/u1/pids.max"]);
  });

  it("raising memory above the current memory+swap writes memsw first", async () => {
    const { fs, cg, layout } = await setup(v1Layout(), { limit: 32 * MB, memsw: 32 * MB });
    enforceMemsw(fs);
    await updateCgroup(cg, { memory: { limit: 64 * MB, swap: 128 * MB } }, { layout }, fs);
    expect(fs.writes.map(([p, v]) => [p.split("/").pop(), v])).toEqual([
      ["memory.memsw.limit_in_bytes", String(128 * MB)],
      ["memory.limit_in_bytes", String(64 * MB)],
    ]);
  });

  it("lowering both writes the memory limit first", async () => {
    const { fs, cg, layout } = await setup(v1Layout(), { limit: 256 * MB, memsw: 512 * MB });
    enforceMemsw(fs);
    await updateCgroup(cg, { memory: { limit: 32 * MB, swap: 64 * MB } }, { layout }, fs);
    expect(fs.writes.map(([p]) => p.split("/").pop())).toEqual([
      "memory.limit_in_bytes",
      "memory.memsw.limit_in_bytes",
    ]);
  });

  it("memory -1 alone also makes memory+swap unlimited, memsw first (as runc)", async () => {
    const { fs, cg, layout } = await setup(v1Layout(), { limit: 32 * MB, memsw: 32 * MB });
    enforceMemsw(fs);
    await updateCgroup(cg, { memory: { limit: -1 } }, { layout }, fs);
    expect(fs.writes.map(([p, v]) => [p.split("/").pop(), v])).toEqual([
      ["memory.memsw.limit_in_bytes", "-1"],
      ["memory.limit_in_bytes", "-1"],
    ]);
  });

  it("refuses, before any write, a memory limit above the current memsw when no swap is given", async () => {
    const { fs, cg, layout } = await setup(v1Layout(), { limit: 32 * MB, memsw: 32 * MB });
    const e = await rejectedMagikError(
      updateCgroup(cg, { pids: { limit: 9 }, memory: { limit: 64 * MB } }, { layout }, fs),
    );
    expect(e.code).toBe("InvalidInput");
    expect(e.details).toMatchObject({ file: "memory.limit_in_bytes", value: String(64 * MB) });
    expect(e.hint).toMatch(/memory\.swap/);
    expect(fs.writes).toEqual([]);
  });

  it("refuses a memsw below the current memory limit when no limit is given", async () => {
    const { fs, cg, layout } = await setup(v1Layout(), { limit: 64 * MB, memsw: 128 * MB });
    const e = await rejectedMagikError(updateCgroup(cg, { memory: { swap: 32 * MB } }, { layout }, fs));
    expect(e.code).toBe("InvalidInput");
    expect(fs.writes).toEqual([]);
  });

  it("validates the whole plan first: a bad value or a missing file means no write at all", async () => {
    const { fs, cg, layout } = await setup();
    const bad = await rejectedMagikError(
      updateCgroup(cg, { pids: { limit: 9 }, memory: { swappiness: 101 } }, { layout }, fs),
    );
    expect(bad.code).toBe("InvalidInput");
    fs.missing.add("cpu.rt_runtime_us");
    const missing = await rejectedMagikError(
      updateCgroup(cg, { pids: { limit: 9 }, cpu: { realtimeRuntime: 5 } }, { layout }, fs),
    );
    expect(missing.code).toBe("NotSupported");
    expect(fs.writes).toEqual([]);
  });

  it("a value the kernel refuses is InvalidInput with file, value and errno; earlier writes are undone", async () => {
    const { fs, cg, layout } = await setup();
    fs.files.set("/cg/cpu,cpuacct/magikrun/u1/cpu.shares", "1024\n");
    fs.files.set("/cg/pids/magikrun/u1/pids.max", "max\n");
    fs.failWrite = (path, value) => (path.endsWith("cpuset.cpus") && value === "999" ? "EINVAL" : undefined);
    // cpuset is planned first; put the refused write last to see the undo.
    const e = await rejectedMagikError(
      updateCgroup(cg, { cpu: { shares: 512 }, pids: { limit: 20 } }, { layout }, fs).then(() =>
        updateCgroup(cg, { cpu: { shares: 256, cpus: "999" } }, { layout }, fs),
      ),
    );
    expect(e.code).toBe("InvalidInput");
    expect(e.details).toMatchObject({ file: "cpuset.cpus", value: "999", errno: "EINVAL" });
    expect(fs.files.get("/cg/cpu,cpuacct/magikrun/u1/cpu.shares")).toBe("512");

    fs.failWrite = (path) => (path.endsWith("pids.max") ? "EINVAL" : undefined);
    await rejectedMagikError(updateCgroup(cg, { cpu: { shares: 128 }, pids: { limit: 3 } }, { layout }, fs));
    expect(fs.written("/cg/cpu,cpuacct/magikrun/u1/cpu.shares").slice(-2)).toEqual(["128", "512"]);
    expect(fs.files.get("/cg/pids/magikrun/u1/pids.max")).toBe("20");
  });

  it("EBUSY on a memory limit (usage above it) is a refused value too", async () => {
    const { fs, cg, layout } = await setup(v1Layout(), { limit: 64 * MB, memsw: 1024 * MB });
    fs.failWrite = (path) => (path.endsWith("memory.limit_in_bytes") ? "EBUSY" : undefined);
    const e = await rejectedMagikError(updateCgroup(cg, { memory: { limit: MB } }, { layout }, fs));
    expect(e.code).toBe("InvalidInput");
    expect(e.details).toMatchObject({ errno: "EBUSY" });
  });

  it("other write failures are Internal", async () => {
    const { fs, cg, layout } = await setup();
    fs.failWrite = () => "EACCES";
    const e = await rejectedMagikError(updateCgroup(cg, { pids: { limit: 3 } }, { layout }, fs));
    expect(e.code).toBe("Internal");
  });

  it("on v2 writes the v2 files of the same leaf", async () => {
    const { fs, cg, layout } = await setup(v2Layout());
    await updateCgroup(
      cg,
      { memory: { limit: 64 * MB }, cpu: { quota: 50_000, period: 100_000 } },
      { layout },
      fs,
    );
    const files = Object.fromEntries(fs.writes.map(([p, v]) => [p.split("/").pop(), v]));
    expect(files).toMatchObject({ "memory.max": String(64 * MB), "cpu.max": "50000 100000" });
  });

  it("on the hybrid host uses the v1 controllers", async () => {
    const { fs, cg, layout } = await setup(hybridLayout());
    const warnings: string[] = [];
    await updateCgroup(
      cg,
      { pids: { limit: 20 }, memory: { kernel: 1 } },
      { layout, onWarning: (m) => warnings.push(m) },
      fs,
    );
    expect(fs.writes).toEqual([["/cg/pids/magikrun/u1/pids.max", "20"]]);
    expect(warnings).toEqual([expect.stringMatching(/kernel is ignored/)]);
  });

  it("a controller the container's cgroup lacks is NotSupported", async () => {
    const { fs, cg, layout } = await setup();
    const partial = { ...cg, paths: { pids: cg.paths.pids! } } as unknown as typeof cg;
    const e = await rejectedMagikError(updateCgroup(partial, { memory: { limit: MB } }, { layout }, fs));
    expect(e.code).toBe("NotSupported");
  });
});
