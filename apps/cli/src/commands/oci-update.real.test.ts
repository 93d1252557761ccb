/**
 * `magikrun update` on real containers, as containerd's shim drives it (one CLI process per step), checked in
 * the host's cgroup files and against Debian's runc applying the same updates to the same bundle.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  haveBusybox,
  makeBundle,
  makeStateRoot,
  RUNC,
  type TestBundle,
  uniqueId,
} from "@magikrun/runtime-native/test-support";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const MB = 1024 * 1024;
const skip =
  process.getuid?.() !== 0
    ? "needs root"
    : !haveBusybox()
      ? "needs busybox-static"
      : !existsSync(RUNC)
        ? `needs runc at ${RUNC}`
        : "";

/** The cgroup files runc update touches on this v1 host, as controller/file. */
const FILES = [
  "memory/memory.limit_in_bytes",
  "memory/memory.memsw.limit_in_bytes",
  "pids/pids.max",
  "cpu/cpu.cfs_quota_us",
  "cpu/cpu.cfs_period_us",
  "cpu/cpu.shares",
];

/** A process's cgroup directory for one v1 controller, from /proc/<pid>/cgroup. */
function cgroupDir(pid: number, controller: string): string {
  for (const line of readFileSync(`/proc/${pid}/cgroup`, "utf8").split("\n")) {
    const [, list, path] = line.split(":");
    if (list?.split(",").includes(controller)) return `/sys/fs/cgroup/${list}${path}`;
  }
  throw new Error(`pid ${pid} has no ${controller} cgroup`);
}

/** Values of FILES for a process; a file the kernel lacks (memsw without swap accounting) is left out. */
function cgroupValues(pid: number): Record<string, string> {
  const values: Record<string, string> = {};
  for (const f of FILES) {
    const [controller, file] = f.split("/") as [string, string];
    const path = join(cgroupDir(pid, controller), file);
    if (existsSync(path)) values[f] = readFileSync(path, "utf8").trim();
  }
  return values;
}

describe.skipIf(skip !== "")(`update${skip ? ` (skipped: ${skip})` : ""}`, () => {
  const state = makeStateRoot();
  const runcRoot = mkdtempSync(join(tmpdir(), "magikrun-runc-"));
  const bundles: TestBundle[] = [];
  const ours: string[] = [];
  const theirs: string[] = [];
  let bundle: TestBundle;

  // Output goes to files, not pipes: a detached container inherits the CLI's stdio and would hold a pipe open.
  let calls = 0;
  const spawn = (argv: string[], stdin = "") => {
    const out = join(state.root, `call-${calls++}`);
    writeFileSync(`${out}.in`, stdin);
    const r = Bun.spawnSync(["sh", "-c", 'exec "$@" >"$0.out" 2>"$0.err" <"$0.in"', out, ...argv], {
      stdio: ["ignore", "ignore", "ignore"],
    });
    return {
      code: r.exitCode,
      stdout: readFileSync(`${out}.out`, "utf8"),
      stderr: readFileSync(`${out}.err`, "utf8"),
    };
  };
  const cli = (args: string[], stdin?: string) => spawn(["bun", MAIN, "--root", state.root, ...args], stdin);
  const runc = (args: string[], stdin?: string) => spawn([RUNC, "--root", runcRoot, ...args], stdin);
  const pidOf = (id: string) => JSON.parse(cli(["state", id]).stdout).pid as number;
  const runcPidOf = (id: string) => JSON.parse(runc(["state", id]).stdout).pid as number;

  const startOurs = (b: TestBundle = bundle) => {
    const id = uniqueId("upd");
    ours.push(id);
    expect(cli(["create", "--bundle", b.dir, id])).toMatchObject({ code: 0 });
    expect(cli(["start", id])).toMatchObject({ code: 0 });
    return id;
  };
  const startRunc = () => {
    const id = uniqueId("runc-upd");
    theirs.push(id);
    expect(runc(["create", "--bundle", bundle.dir, id])).toMatchObject({ code: 0 });
    expect(runc(["start", id])).toMatchObject({ code: 0 });
    return id;
  };

  beforeAll(() => {
    bundle = makeBundle(["sleep", "30"]);
    bundles.push(bundle);
  });
  afterAll(() => {
    for (const id of ours) cli(["delete", "--force", id]);
    for (const id of theirs) runc(["delete", "--force", id]);
    for (const b of bundles) b.cleanup();
    rmSync(runcRoot, { recursive: true, force: true });
    state.cleanup();
  });

  it("applies individual flags and a --resources document from stdin, records them, and deletes cleanly", () => {
    const id = startOurs();
    const pid = pidOf(id);
    const dirs = ["memory", "pids", "cpu"].map((c) => cgroupDir(pid, c));

    const flags = ["--memory", "64m", "--pids-limit", "20", "--cpu-quota", "50000", "--cpu-period", "100000"];
    expect(cli(["update", ...flags, id])).toMatchObject({ code: 0 });
    expect(cgroupValues(pid)).toMatchObject({
      "memory/memory.limit_in_bytes": String(64 * MB),
      "pids/pids.max": "20",
      "cpu/cpu.cfs_quota_us": "50000",
      "cpu/cpu.cfs_period_us": "100000",
    });

    const doc = { memory: { limit: 32 * MB, swap: 96 * MB }, cpu: { shares: 512 }, pids: { limit: 30 } };
    expect(cli(["update", "--resources", "-", id], JSON.stringify(doc))).toMatchObject({ code: 0 });
    const values = cgroupValues(pid);
    expect(values).toMatchObject({
      "memory/memory.limit_in_bytes": String(32 * MB),
      "pids/pids.max": "30",
      "cpu/cpu.shares": "512",
      "cpu/cpu.cfs_quota_us": "50000",
    });
    if (values["memory/memory.memsw.limit_in_bytes"] !== undefined) {
      expect(values["memory/memory.memsw.limit_in_bytes"]).toBe(String(96 * MB));
    }
    // The stored config holds both updates merged, for the next update and for events --stats.
    const stored = JSON.parse(readFileSync(join(state.root, id, "state.json"), "utf8"));
    expect(stored.config.linux.resources).toMatchObject({
      memory: { limit: 32 * MB, swap: 96 * MB },
      cpu: { shares: 512, quota: 50_000, period: 100_000 },
      pids: { limit: 30 },
    });

    // A paused container can be updated too (as with runc).
    expect(cli(["pause", id]).code).toBe(0);
    expect(cli(["update", "--pids-limit", "25", id])).toMatchObject({ code: 0 });
    expect(cli(["resume", id]).code).toBe(0);
    expect(cgroupValues(pid)["pids/pids.max"]).toBe("25");

    expect(cli(["delete", "--force", id])).toMatchObject({ code: 0 });
    expect(existsSync(join(state.root, id))).toBe(false);
    for (const dir of dirs) expect(existsSync(dir)).toBe(false);
  });

  it("leaves the same values in the same cgroup files as runc update, step by step", () => {
    const id = startOurs();
    const rid = startRunc();
    const steps: { args: string[]; stdin?: string }[] = [
      { args: ["--memory", "64m", "--pids-limit", "20", "--cpu-quota", "50000", "--cpu-period", "100000"] },
      {
        args: ["--resources", "-"],
        stdin: JSON.stringify({
          memory: { limit: 32 * MB, swap: 64 * MB },
          cpu: { shares: 512, quota: 20_000, period: 100_000 },
          pids: { limit: 30 },
        }),
      },
      // Above the current memory+swap: only works in the right order.
      { args: ["--memory", "128m", "--memory-swap", "256m"] },
      { args: ["--cpu-quota", "-1", "--cpu-share", "2048"] },
      { args: ["--memory", "-1"] },
    ];
    for (const step of steps) {
      const theirsResult = runc(["update", ...step.args, rid], step.stdin);
      const oursResult = cli(["update", ...step.args, id], step.stdin);
      expect({ step: step.args, code: oursResult.code }).toEqual({
        step: step.args,
        code: theirsResult.code,
      });
      expect({ step: step.args, values: cgroupValues(pidOf(id)) }).toEqual({
        step: step.args,
        values: cgroupValues(runcPidOf(rid)),
      });
    }
  });

  it("refuses a stopped or missing container with InvalidState / ContainerNotFound", async () => {
    const quick = makeBundle(["true"]);
    bundles.push(quick);
    const id = startOurs(quick);
    for (let i = 0; i < 200 && JSON.parse(cli(["state", id]).stdout).status !== "stopped"; i++) {
      await Bun.sleep(10);
    }
    const stopped = cli(["update", "--pids-limit", "5", id]);
    expect(stopped.code).toBe(1);
    expect(stopped.stderr).toMatch(/InvalidState/);
    const missing = cli(["update", "--pids-limit", "5", uniqueId("nosuch")]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/ContainerNotFound/);
  });

  it("a value the kernel refuses is InvalidInput and leaves every value as it was", () => {
    const id = startOurs();
    const pid = pidOf(id);
    const set = ["--memory", "64m", "--pids-limit", "20", "--cpu-quota", "50000", "--cpu-period", "100000"];
    expect(cli(["update", ...set, id]).code).toBe(0);
    const before = cgroupValues(pid);
    const cpus = readFileSync(join(cgroupDir(pid, "cpuset"), "cpuset.cpus"), "utf8");

    // cpuset is written first: nothing else is reached.
    const cpuset = cli(["update", "--cpuset-cpus", "999", "--pids-limit", "5", id]);
    expect(cpuset.code).toBe(2);
    expect(cpuset.stderr).toMatch(/InvalidInput.*cpuset\.cpus/);
    // A quota under 1 ms is refused after the memory limit was written: that write is undone.
    const quota = cli(["update", "--memory", "48m", "--cpu-quota", "500", "--pids-limit", "5", id]);
    expect(quota.code).toBe(2);
    expect(quota.stderr).toMatch(/InvalidInput.*cfs_quota_us/);

    expect(cgroupValues(pid)).toEqual(before);
    expect(readFileSync(join(cgroupDir(pid, "cpuset"), "cpuset.cpus"), "utf8")).toBe(cpus);
    const stored = JSON.parse(readFileSync(join(state.root, id, "state.json"), "utf8"));
    expect(stored.config.linux.resources.pids).toEqual({ limit: 20 });
  });
});
