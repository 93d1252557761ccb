import { isMagikError } from "@magikrun/spec";
import { describe, expect, it } from "vitest";
import { parseSignal, signalName } from "./signals.ts";

describe("parseSignal", () => {
  it("accepts the spellings runc accepts", () => {
    expect(parseSignal("KILL")).toBe(9);
    expect(parseSignal("sigterm")).toBe(15);
    expect(parseSignal("9")).toBe(9);
    expect(parseSignal(2)).toBe(2);
    expect(parseSignal("RTMIN+2")).toBe(36);
    expect(signalName(15)).toBe("SIGTERM");
  });

  it("refuses unknown names and out-of-range numbers with the value in details", () => {
    for (const bad of ["NOPE", "0", 65, "RTMAX+1", ""]) {
      try {
        parseSignal(bad);
        expect.unreachable();
      } catch (err) {
        expect(isMagikError(err, "InvalidInput")).toBe(true);
        expect((err as { details: { signal: unknown } }).details.signal).toBe(bad);
      }
    }
  });
});
