import { describe, expect, it } from "vitest";
import { PullProgressRenderer } from "./pull-progress.ts";

const A = `sha256:${"a".repeat(64)}`;
const B = `sha256:${"b".repeat(64)}`;

function run(isTTY: boolean): string {
  let out = "";
  const r = new PullProgressRenderer({ isTTY, write: (t) => (out += t) });
  r.onProgress({
    type: "resolved",
    reference: "x.io/y:1",
    manifestDigest: A,
    platform: "linux/amd64",
    layers: [
      { digest: A, size: 2048 },
      { digest: B, size: 100 },
    ],
  });
  r.onProgress({ type: "layer", digest: A, size: 2048, current: 1024, status: "downloading" });
  r.onProgress({ type: "layer", digest: B, size: 100, current: 100, status: "exists" });
  r.onProgress({ type: "layer", digest: A, size: 2048, current: 2048, status: "done" });
  r.onProgress({ type: "stored", reference: "x.io/y:1", manifestDigest: A });
  return out;
}

describe("PullProgressRenderer", () => {
  it("prints one line per layer state change when not on a terminal", () => {
    expect(run(false).split("\n")).toEqual([
      `resolved x.io/y:1 (linux/amd64) ${A}`,
      "aaaaaaaaaaaa: downloading 2.0 KiB",
      "bbbbbbbbbbbb: exists 100 B",
      "aaaaaaaaaaaa: done 2.0 KiB",
      "",
    ]);
  });

  it("redraws one bar per layer in place on a terminal", () => {
    const out = run(true);
    const frames = out.split("\x1b[2A");
    const last = frames.at(-1)!;
    expect(last).toContain(`aaaaaaaaaaaa done        [${"=".repeat(24)}] 2.0 KiB/2.0 KiB`);
    expect(last).toContain("bbbbbbbbbbbb exists");
    expect(out).toContain(`[${"=".repeat(12)}${" ".repeat(12)}] 1.0 KiB/2.0 KiB`);
  });
});
