import type { Resources } from "@magikrun/spec";
import { thrownMagikError } from "@magikrun/spec/test-support";
import { describe, expect, it } from "vitest";
import { hybridLayout, v1Layout, v2Layout } from "./fake-fs.ts";
import { planResources } from "./plan.ts";
import { blkioWeightToIoWeight, sharesToWeight } from "./v2-writes.ts";

/** "hierarchy:file=value" per write, in order. */
function lines(layout = v1Layout(), r: Resources): string[] {
  return planResources(layout, r).writes.map(
    (w) => `${w.hierarchy}:${w.choices[0]!.file}=${w.choices[0]!.value}`,
  );
}

describe("cgroup v1 conversion", () => {
  it("writes the memory limit before memory+swap, and the rest of memory", () => {
    const r: Resources = {
      memory: { limit: 32 << 20, swap: 64 << 20, reservation: 16 << 20, swappiness: 10 },
    };
    expect(lines(v1Layout(), r)).toEqual([
      "memory:memory.limit_in_bytes=33554432",
      "memory:memory.memsw.limit_in_bytes=67108864",
      "memory:memory.soft_limit_in_bytes=16777216",
      "memory:memory.swappiness=10",
    ]);
  });

  it("writes the CFS period before the quota, cpuset, pids, devices in order", () => {
    const r: Resources = {
      cpu: { shares: 512, quota: 50_000, period: 100_000, cpus: "0", mems: "0" },
      pids: { limit: 16 },
      devices: [
        { allow: false, access: "rwm" },
        { allow: true, type: "c", major: 1, minor: 3, access: "rw" },
        { allow: true, type: "c", major: 136, minor: null },
      ],
    };
    expect(lines(v1Layout(), r)).toEqual([
      "cpuset:cpuset.cpus=0",
      "cpuset:cpuset.mems=0",
      "cpu:cpu.shares=512",
      "cpu:cpu.cfs_period_us=100000",
      "cpu:cpu.cfs_quota_us=50000",
      "pids:pids.max=16",
      "devices:devices.deny=a *:* rwm",
      "devices:devices.allow=c 1:3 rw",
      "devices:devices.allow=c 136:* rwm",
    ]);
  });

  it("treats -1 as unlimited and 0 as unset", () => {
    expect(lines(v1Layout(), { memory: { limit: -1, swap: 0 }, pids: { limit: -1 } })).toEqual([
      "memory:memory.limit_in_bytes=-1",
      "pids:pids.max=max",
    ]);
  });

  it("offers BFQ's weight file when blkio.weight is absent, and writes throttles", () => {
    const plan = planResources(v1Layout(), {
      blockIO: { weight: 500, throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 1048576 }] },
    });
    expect(plan.writes[0]?.choices.map((c) => c.file)).toEqual(["blkio.weight", "blkio.bfq.weight"]);
    expect(plan.writes[1]?.choices).toEqual([
      { file: "blkio.throttle.read_bps_device", value: "8:0 1048576" },
    ]);
  });

  it("warns about, and does not write, kernel memory limits", () => {
    const plan = planResources(v1Layout(), { memory: { kernel: 1 << 20, kernelTCP: 1 << 20 } });
    expect(plan.writes).toEqual([]);
    expect(plan.warnings.join("\n")).toMatch(/memory\.kernel is ignored[\s\S]*kernelTCP is ignored/);
  });

  it("refuses bad values with the field and value in details", () => {
    const e = thrownMagikError(() =>
      planResources(v1Layout(), { memory: { limit: 64 << 20, swap: 32 << 20 } }),
    );
    expect(e.code).toBe("InvalidInput");
    expect(e.details).toEqual({ field: "linux.resources.memory.swap", value: 32 << 20 });
    expect(thrownMagikError(() => planResources(v1Layout(), { memory: { swappiness: 101 } })).code).toBe(
      "InvalidInput",
    );
    expect(thrownMagikError(() => planResources(v1Layout(), { memory: { limit: -2 } })).code).toBe(
      "InvalidInput",
    );
    expect(
      thrownMagikError(() => planResources(v1Layout(), { hugepageLimits: [{ pageSize: "2M", limit: 1 }] }))
        .code,
    ).toBe("InvalidInput");
  });

  it("names a missing controller in a NotSupported error", () => {
    const e = thrownMagikError(() => planResources(v1Layout(), { network: { classID: 7 } }));
    expect(e.code).toBe("NotSupported");
    expect(e.details.controller).toBe("net_cls");
    expect(e.details.fields).toEqual(["linux.resources.network.classID"]);
    expect(thrownMagikError(() => planResources(v1Layout(), { unified: { "memory.high": "1" } })).code).toBe(
      "NotSupported",
    );
  });
});

describe("cgroup v2 conversion", () => {
  it("converts memory+swap to swap alone and the reservation to memory.low", () => {
    expect(lines(v2Layout(), { memory: { limit: 32 << 20, swap: 48 << 20, reservation: 1 << 20 } })).toEqual([
      "unified:memory.max=33554432",
      "unified:memory.swap.max=16777216",
      "unified:memory.low=1048576",
    ]);
    expect(lines(v2Layout(), { memory: { limit: -1, swap: -1 } })).toEqual([
      "unified:memory.max=max",
      "unified:memory.swap.max=max",
    ]);
    expect(thrownMagikError(() => planResources(v2Layout(), { memory: { swap: 1 << 20 } })).code).toBe(
      "InvalidInput",
    );
  });

  it("converts shares to cpu.weight and quota/period to cpu.max", () => {
    expect(lines(v2Layout(), { cpu: { shares: 1024, quota: 50_000, period: 200_000 } })).toEqual([
      "unified:cpu.weight=39",
      "unified:cpu.max=50000 200000",
    ]);
    expect(lines(v2Layout(), { cpu: { quota: -1 } })).toEqual(["unified:cpu.max=max 100000"]);
    expect(lines(v2Layout(), { cpu: { period: 50_000 } })).toEqual(["unified:cpu.max=max 50000"]);
    expect(sharesToWeight(2)).toBe(1);
    expect(sharesToWeight(262_144)).toBe(10_000);
    expect(sharesToWeight(1)).toBe(1);
  });

  it("converts blkio weights to io.weight, preferring BFQ, and throttles to io.max", () => {
    const plan = planResources(v2Layout(), {
      blockIO: { weight: 1000, throttleWriteIOPSDevice: [{ major: 8, minor: 16, rate: 100 }] },
    });
    expect(plan.writes[0]?.choices).toEqual([
      { file: "io.bfq.weight", value: "1000" },
      { file: "io.weight", value: "default 10000" },
    ]);
    expect(plan.writes[1]?.choices).toEqual([{ file: "io.max", value: "8:16 wiops=100" }]);
    expect(blkioWeightToIoWeight(10)).toBe(1);
    expect(blkioWeightToIoWeight(500)).toBe(4950);
  });

  it("lists the controllers to enable, and passes unified keys through", () => {
    const plan = planResources(v2Layout(), { pids: { limit: 5 }, unified: { "memory.high": "1000000" } });
    expect(plan.v2Controllers.sort()).toEqual(["memory", "pids"]);
    expect(plan.writes.map((w) => w.choices[0]?.file)).toEqual(["pids.max", "memory.high"]);
    expect(thrownMagikError(() => planResources(v2Layout(), { unified: { "../x": "1" } })).code).toBe(
      "InvalidInput",
    );
  });

  it("refuses realtime CPU, which v2 cannot do", () => {
    expect(thrownMagikError(() => planResources(v2Layout(), { cpu: { realtimeRuntime: 1000 } })).code).toBe(
      "NotSupported",
    );
  });

  it("hands device rules over for a BPF program, since v2 has no devices files", () => {
    const devices = [{ allow: false, access: "rwm" }];
    const plan = planResources(v2Layout(), { devices });
    expect(plan.writes).toEqual([]);
    expect(plan.v2DeviceRules).toEqual(devices);
    expect(planResources(v1Layout(), { devices }).v2DeviceRules).toBeUndefined();
    const nowhere = { ...v1Layout(), v1: {} };
    expect(thrownMagikError(() => planResources(nowhere, { devices })).details.controller).toBe("devices");
  });

  it("warns about v1-only memory knobs", () => {
    const plan = planResources(v2Layout(), { memory: { swappiness: 0, disableOOMKiller: true } });
    expect(plan.writes).toEqual([]);
    expect(plan.warnings).toHaveLength(2);
  });
});

describe("hybrid hosts", () => {
  it("uses v1 controllers where mounted, and the v2 hierarchy for the rest", () => {
    const plan = planResources(hybridLayout(), {
      memory: { limit: 1 << 20 },
      hugepageLimits: [{ pageSize: "2MB", limit: 0 }],
    });
    expect(plan.writes.map((w) => `${w.hierarchy}:${w.choices[0]?.file}`)).toEqual([
      "memory:memory.limit_in_bytes",
      "unified:hugetlb.2MB.max",
    ]);
    expect(plan.v2Controllers).toEqual(["hugetlb"]);
    const e = thrownMagikError(() => planResources(hybridLayout(), { unified: { "memory.high": "1" } }));
    expect(e.message).toMatch(/bound to a cgroup v1 hierarchy/);
  });
});
