import { describe, expect, it } from "vitest";
import { mergeResources } from "./update.ts";

const MB = 1024 * 1024;

describe("mergeResources (what update stores)", () => {
  it("puts the new values over the stored ones, keeps what was left alone, never stores devices", () => {
    const merged = mergeResources(
      {
        devices: [{ allow: false, access: "rwm" }],
        memory: { limit: 32 * MB, swap: 64 * MB },
        cpu: { shares: 1024, period: 100_000 },
        pids: { limit: 5 },
      },
      {
        devices: [{ allow: true, access: "rwm" }],
        memory: { limit: 64 * MB, swap: 0 },
        cpu: { quota: 50_000, cpus: "" },
        pids: { limit: 0 },
        hugepageLimits: [{ pageSize: "2MB", limit: 0 }],
      },
    );
    expect(merged).toEqual({
      devices: [{ allow: false, access: "rwm" }],
      memory: { limit: 64 * MB, swap: 64 * MB },
      cpu: { shares: 1024, period: 100_000, quota: 50_000 },
      pids: { limit: 5 },
      hugepageLimits: [{ pageSize: "2MB", limit: 0 }],
    });
  });
});
