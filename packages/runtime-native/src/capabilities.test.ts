import { readFileSync } from "node:fs";
import { isMagikError } from "@magikrun/spec";
import { describe, expect, it } from "vitest";
import {
  CAPABILITY_NAMES,
  capabilityMasks,
  capabilityNames,
  capabilityNumber,
  capabilitySet,
  dropUnavailableCapabilities,
  lastCap,
} from "./capabilities.ts";

describe("capability table", () => {
  it("numbers capabilities as linux/capability.h does", () => {
    expect(CAPABILITY_NAMES).toHaveLength(41);
    expect(capabilityNumber("CAP_CHOWN")).toBe(0);
    expect(capabilityNumber("CAP_KILL")).toBe(5);
    expect(capabilityNumber("CAP_NET_BIND_SERVICE")).toBe(10);
    expect(capabilityNumber("CAP_SYS_ADMIN")).toBe(21);
    expect(capabilityNumber("CAP_SYS_RESOURCE")).toBe(24);
    expect(capabilityNumber("CAP_SETFCAP")).toBe(31);
    expect(capabilityNumber("CAP_AUDIT_READ")).toBe(37);
    expect(capabilityNumber("CAP_PERFMON")).toBe(38);
    expect(capabilityNumber("CAP_BPF")).toBe(39);
    expect(capabilityNumber("CAP_CHECKPOINT_RESTORE")).toBe(40);
  });

  it("refuses unknown names with the name in details", () => {
    let caught: unknown;
    try {
      capabilitySet(["CAP_CHOWN", "CAP_TELEPORT"]);
    } catch (err) {
      caught = err;
    }
    expect(isMagikError(caught, "InvalidInput")).toBe(true);
    expect(isMagikError(caught) && caught.details.value).toBe("CAP_TELEPORT");
  });

  it("builds masks and reads them back", () => {
    expect(capabilitySet([])).toBe(0n);
    expect(capabilitySet(["CAP_CHOWN", "CAP_KILL", "CAP_KILL"])).toBe(0b100001n);
    expect(capabilitySet(["CAP_CHECKPOINT_RESTORE"])).toBe(1n << 40n);
    expect(capabilityNames(0b100001n | (1n << 40n))).toEqual([
      "CAP_CHOWN",
      "CAP_KILL",
      "CAP_CHECKPOINT_RESTORE",
    ]);
    expect(capabilityNames(1n << 45n)).toEqual(["CAP_45"]);
    const masks = capabilityMasks({ bounding: ["CAP_SYS_ADMIN"], ambient: ["CAP_NET_RAW"] });
    expect(masks).toEqual({
      bounding: 1n << 21n,
      effective: 0n,
      inheritable: 0n,
      permitted: 0n,
      ambient: 1n << 13n,
    });
  });
});

describe("the running kernel", () => {
  it("lastCap is the kernel's cap_last_cap", () => {
    expect(lastCap()).toBe(Number(readFileSync("/proc/sys/kernel/cap_last_cap", "utf8")));
  });

  it("round-trips this process's bounding set from /proc/self/status", () => {
    const hex = /^CapBnd:\s*([0-9a-f]+)$/m.exec(readFileSync("/proc/self/status", "utf8"))?.[1];
    const mask = BigInt(`0x${hex}`);
    const names = capabilityNames(mask);
    expect(names.length).toBeGreaterThan(0);
    expect(capabilitySet(names)).toBe(mask);
  });

  it("drops capabilities newer than the kernel, with a warning each", () => {
    const { capabilities, warnings } = dropUnavailableCapabilities(
      { bounding: ["CAP_CHOWN", "CAP_PERFMON", "CAP_BPF"], effective: ["CAP_BPF"], ambient: [] },
      37,
    );
    expect(capabilities).toEqual({ bounding: ["CAP_CHOWN"], effective: [], ambient: [] });
    expect(warnings).toEqual([
      "capability CAP_PERFMON is not supported by this kernel; ignored",
      "capability CAP_BPF is not supported by this kernel; ignored",
    ]);
    expect(dropUnavailableCapabilities({ bounding: ["CAP_BPF"] }).capabilities.bounding).toEqual(
      lastCap() >= 39 ? ["CAP_BPF"] : [],
    );
  });
});
