import { rmSync } from "node:fs";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import type { WasiClock } from "./clock.ts";
import { closeFd, makePipe, writeFd } from "./socket-support.ts";
import { buildC, runWasi, tempDir } from "./test-support.ts";

let time: Uint8Array;
const dirs: string[] = [];

beforeAll(() => {
  time = buildC("time");
});

afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function lines(mode: string): string[] {
  const dir = tempDir("time");
  dirs.push(dir);
  const result = runWasi(time, { args: ["t", mode], preopens: [{ guestPath: "/sandbox", hostPath: dir }] });
  expect(result.code).toBe(0);
  return result.stdout.trim().split("\n");
}

describe("clocks, random, sleeping, poll_oneoff, sched_yield", () => {
  it("reads every clock and reports resolutions; unknown clocks are EINVAL", () => {
    const before = Math.floor(Date.now() / 1000);
    const [realtime, ...rest] = lines("clocks");
    const seconds = Number(realtime?.replace("realtime=", ""));
    expect(seconds).toBeGreaterThanOrEqual(before);
    expect(seconds).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000));
    expect(rest).toEqual([
      "monotonic nondecreasing=1",
      "cputime ok=1",
      "res monotonic=1",
      "res realtime=1000",
      "bad clock=28",
      "bad clock res=28",
    ]);
  });

  it("fills buffers with random bytes, beyond the 64 KiB crypto chunk", () => {
    expect(lines("random")).toEqual(["random differs=1 mostly nonzero=1", "big random=1"]);
  });

  it("sleeps for nanosleep and poll timeouts, and yields", () => {
    expect(lines("sleep")).toEqual([
      "nanosleep rc=0 at least 50ms=1",
      "poll timeout rc=0 at least 30ms=1",
      "sched_yield=0",
    ]);
  });

  it("polls files, stdin, bad fds and relative/absolute clocks", () => {
    expect(lines("poll")).toEqual([
      "poll files rc=0 n=2",
      // Reading: bytes from the position (4) to the end (10).
      "event ud=11 type=1 err=0 nbytes=6",
      "event ud=22 type=2 err=0 nbytes=0",
      "abs clock rc=0 n=1 ud=1 waited>=15ms=1 waited<1s=1",
      "poll stdin/bad rc=0 n=3",
      // An ignored stdin is at end of file: ready, with the hangup flag.
      "event ud=7 type=1 err=0 flags=1",
      "event ud=8 type=1 err=8 flags=0",
      "event ud=9 type=0 err=28 flags=0",
      "poll none=28",
    ]);
  });

  it("polls a stdin pipe through the host: data ready at once, or the clock fires when it is empty", () => {
    const [readEnd, writeEnd] = makePipe();
    try {
      writeFd(writeEnd, "abc");
      expect(runWasi(time, { args: ["t", "pollstdin"], stdin: readEnd }).stdout).toBe(
        "rc=0 n=1 ud=7 nbytes=3\n",
      );
      const [emptyRead, emptyWrite] = makePipe();
      try {
        const started = performance.now();
        const result = runWasi(time, { args: ["t", "pollstdin"], stdin: emptyRead });
        expect(result.stdout).toBe("rc=0 n=1 ud=8 nbytes=0\n");
        expect(performance.now() - started).toBeGreaterThanOrEqual(190);
      } finally {
        closeFd(emptyRead);
        closeFd(emptyWrite);
      }
    } finally {
      closeFd(readEnd);
      closeFd(writeEnd);
    }
  });

  it("uses an injected clock for time and for sleeping", () => {
    const slept: bigint[] = [];
    let now = 5_000_000_000n;
    const clock: WasiClock = {
      realtime: () => 1_700_000_000_000_000_000n,
      monotonic: () => now,
      cputime: () => 0n,
      sleep: (ns) => {
        slept.push(ns);
        now += ns;
      },
    };
    const result = runWasi(time, { args: ["t", "sleep"], clock });
    expect(result.stdout).toBe(
      "nanosleep rc=0 at least 50ms=1\npoll timeout rc=0 at least 30ms=1\nsched_yield=0\n",
    );
    expect(slept).toEqual([50_000_000n, 30_000_000n]);
    const clocks = runWasi(time, { args: ["t", "clocks"], clock });
    expect(clocks.stdout.split("\n")[0]).toBe("realtime=1700000000");
  });
});
