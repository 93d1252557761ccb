import { rejectedMagikError } from "@magikrun/spec/test-support";
import { describe, expect, it } from "vitest";
import { parseSize } from "../sizes.ts";
import { parseArgs } from "./oci.ts";
import { updateResources } from "./oci-update.ts";

const MB = 1024 * 1024;

async function resourcesOf(args: string[], stdin = "") {
  const warnings: string[] = [];
  const p = parseArgs("update", [...args, "id"]);
  expect(p.positional).toEqual(["id"]);
  const r = await updateResources({
    flags: p.flags,
    readResources: () => stdin,
    warn: (m) => warnings.push(m),
  });
  return { r, warnings };
}

function failure(args: string[], stdin = "") {
  return rejectedMagikError(resourcesOf(args, stdin));
}

describe("update flags -> linux.resources", () => {
  it("converts runc's individual flags", async () => {
    const { r } = await resourcesOf([
      "--memory",
      "64m",
      "--memory-swap=-1",
      "--memory-reservation",
      "32MiB",
      "--pids-limit",
      "20",
      "--cpu-quota",
      "50000",
      "--cpu-period",
      "100000",
      "--cpu-share",
      "512",
      "--cpu-rt-period",
      "1000000",
      "--cpu-rt-runtime",
      "-1",
      "--cpuset-cpus",
      "0",
      "--cpuset-mems",
      "0",
      "--blkio-weight",
      "300",
    ]);
    expect(r).toEqual({
      memory: { limit: 64 * MB, swap: -1, reservation: 32 * MB },
      pids: { limit: 20 },
      cpu: {
        quota: 50_000,
        period: 100_000,
        shares: 512,
        realtimePeriod: 1_000_000,
        realtimeRuntime: -1,
        cpus: "0",
        mems: "0",
      },
      blockIO: { weight: 300 },
    });
  });

  it("reads --resources (JSON on stdin with -), and individual flags override its fields", async () => {
    const stdin = JSON.stringify({ memory: { limit: 32 * MB, swap: 64 * MB }, pids: { limit: 5 } });
    const { r } = await resourcesOf(["-r", "-", "--pids-limit", "7"], stdin);
    expect(r).toEqual({ memory: { limit: 32 * MB, swap: 64 * MB }, pids: { limit: 7 } });
  });

  it("validates the document with the OCI schema", async () => {
    const e = await failure(["--resources", "-"], '{"memory":{"limit":"64m"}}');
    expect(e.code).toBe("InvalidInput");
    expect(e.message).toMatch(/memory\.limit/);
    expect((await failure(["--resources", "-"], "{not json")).code).toBe("InvalidInput");
  });

  it("accepts the kernel memory flags with a warning, and does not pass them on", async () => {
    const { r, warnings } = await resourcesOf(["--kernel-memory", "10m", "--kernel-memory-tcp", "1m"]);
    expect(r).toEqual({});
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toMatch(/--kernel-memory is ignored/);
  });

  it("refuses Intel RDT flags as NotSupported and bad numbers as InvalidInput", async () => {
    expect((await failure(["--l3-cache-schema", "L3:0=ff"])).code).toBe("NotSupported");
    expect((await failure(["--mem-bw-schema", "MB:0=50"])).code).toBe("NotSupported");
    for (const args of [
      ["--cpu-period", "-5"],
      ["--cpu-quota", "1.5"],
      ["--pids-limit", "many"],
      ["--memory", "64q"],
      ["--blkio-weight", "5"],
    ]) {
      const e = await failure(args);
      expect(e.code).toBe("InvalidInput");
      expect(e.details).toMatchObject({ flag: args[0] });
    }
  });
});

describe("parseSize (shared with bundle --memory)", () => {
  it.each([
    ["64m", 64 * MB],
    ["64M", 64 * MB],
    ["64mb", 64 * MB],
    ["64MiB", 64 * MB],
    ["64 m", 64 * MB],
    ["1t", 1024 ** 4],
    ["512k", 512 * 1024],
    ["100", 100],
    ["100b", 100],
  ])("%s", (value, bytes) => {
    expect(parseSize(value, "--memory")).toBe(bytes);
  });

  it("takes fractions and 0 only when asked (runc update does, bundle does not)", () => {
    expect(parseSize("1.5g", "--memory", { allowFraction: true })).toBe(1.5 * 1024 ** 3);
    expect(parseSize("0", "--memory", { allowZero: true })).toBe(0);
    expect(() => parseSize("1.5g", "--memory")).toThrow(/--memory/);
    expect(() => parseSize("0", "--memory")).toThrow(/--memory/);
  });
});
