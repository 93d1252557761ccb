import { isMagikError } from "@magikrun/spec";
import { describe, expect, it } from "vitest";
import { MS, parseMountOptions } from "./mount-options.ts";

describe("parseMountOptions", () => {
  it("splits flags, propagation and filesystem data", () => {
    const parsed = parseMountOptions(["nosuid", "strictatime", "mode=755", "size=65536k", "rslave"]);
    expect(parsed.flags).toBe(MS.NOSUID | MS.STRICTATIME);
    expect(parsed.propagation).toBe(MS.SLAVE | MS.REC);
    expect(parsed.data).toBe("mode=755,size=65536k");
    expect(parsed.isBind).toBe(false);
  });

  it("lets a later option undo an earlier one, as the kernel's option parser does", () => {
    expect(parseMountOptions(["ro", "rw"]).flags).toBe(0);
    expect(parseMountOptions(["rbind", "ro"]).flags).toBe(MS.BIND | MS.REC | MS.RDONLY);
    expect(parseMountOptions(["rbind"]).isBind).toBe(true);
  });

  it("refuses options it would otherwise silently ignore", () => {
    try {
      parseMountOptions(["tmpcopyup"], "/tmp");
      expect.unreachable();
    } catch (err) {
      expect(isMagikError(err, "NotSupported")).toBe(true);
      expect((err as { details: unknown }).details).toEqual({ option: "tmpcopyup", destination: "/tmp" });
    }
  });
});
