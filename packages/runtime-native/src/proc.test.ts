import { describe, expect, it } from "vitest";
import { isSameLiveProcess, parseProcStat, readProcStat } from "./proc.ts";

describe("proc stat", () => {
  it("parses a comm with spaces and parentheses", () => {
    const line = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 123456 1000 10";
    expect(parseProcStat(line)).toEqual({ state: "S", startTime: 123456 });
  });

  it("tells this process from a reused pid", () => {
    const self = readProcStat(process.pid)!;
    expect(isSameLiveProcess(process.pid, self.startTime)).toBe(true);
    expect(isSameLiveProcess(process.pid, self.startTime + 1)).toBe(false);
    expect(readProcStat(2 ** 22 + 1)).toBeUndefined();
  });
});
