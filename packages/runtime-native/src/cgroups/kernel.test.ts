import { existsSync, readFileSync } from "node:fs";
import { posix } from "node:path";
import { isMagikError, type Resources } from "@magikrun/spec";
import type { Subprocess } from "bun";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCgroup } from "./create.ts";
import type { CgroupHandle } from "./handle.ts";
import { type CgroupLayout, detectCgroupLayout, parseCgroupMounts } from "./layout.ts";

/** Real cgroups, real processes: needs root and a mounted cgroup filesystem. */

const BUSYBOX = ["/usr/bin/busybox", "/bin/busybox"].find((p) => existsSync(p));
const isRoot = process.getuid?.() === 0;
const skipReason = !isRoot ? "needs root" : BUSYBOX === undefined ? "needs busybox-static" : undefined;
if (skipReason !== undefined) console.warn(`cgroups kernel tests skipped: ${skipReason}`);

const HAS_V2 = parseCgroupMounts(readFileSync("/proc/self/mountinfo", "utf8")).v2 !== undefined;
const HAS_V1_DEVICES =
  parseCgroupMounts(readFileSync("/proc/self/mountinfo", "utf8")).v1.devices !== undefined;

// Unique per worker and run, so parallel workers and earlier crashed runs never collide.
const PARENT = `/magikrun-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
let layout: CgroupLayout;
const handles: CgroupHandle[] = [];
const children: Subprocess[] = [];

async function newCgroup(name: string, resources: Resources = {}): Promise<CgroupHandle> {
  const cg = await createCgroup({ id: name, cgroupsPath: `${PARENT}/${name}`, resources, layout });
  handles.push(cg);
  return cg;
}

/** A busybox shell that waits for one line on stdin before running `script`, so it can join a cgroup first. */
function gatedShell(script: string) {
  const child = Bun.spawn([BUSYBOX!, "sh", "-c", `read go; ${script}`], {
    stdin: "pipe",
    stdout: "pipe",
    stderr: "pipe",
  });
  children.push(child);
  const release = () => {
    child.stdin.write("go\n");
    child.stdin.flush();
  };
  return { child, release };
}

function controlFile(cg: CgroupHandle, controller: string, v1File: string, v2File: string): string {
  const dir = cg.paths[controller];
  return readFileSync(
    dir !== undefined ? posix.join(dir, v1File) : posix.join(cg.paths.unified!, v2File),
    "utf8",
  );
}

async function until(check: () => boolean | Promise<boolean>, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await Bun.sleep(10);
  }
}

describe.skipIf(skipReason !== undefined)("cgroups on the real kernel", () => {
  beforeAll(async () => {
    layout = await detectCgroupLayout();
  });

  afterAll(async () => {
    for (const child of children) child.kill("SIGKILL");
    for (const cg of handles) await cg.killAll().catch(() => {});
    for (const cg of handles.reverse()) await cg.destroy().catch(() => {});
  });

  it("OOM-kills a process allocating 96M under a 32M limit, and lets it run under 256M", async () => {
    const memsw = layout.v1.memory
      ? existsSync(`${layout.v1.memory.mountPoint}/memory.memsw.limit_in_bytes`)
      : true;
    // Without a memory+swap limit a host with swap would page out instead of killing.
    const limited = (limit: number): Resources => ({ memory: memsw ? { limit, swap: limit } : { limit } });
    const allocate = `exec ${BUSYBOX} dd if=/dev/zero of=/dev/null bs=96M count=1`;

    const small = await newCgroup("oom", limited(32 << 20));
    const oom = gatedShell(allocate);
    await small.join(oom.child.pid);
    oom.release();
    await oom.child.exited;
    expect(oom.child.signalCode).toBe("SIGKILL");
    expect((await small.stats()).memory?.limit).toBe(32 << 20);
    expect((await small.stats()).memory?.oomKills).toBeGreaterThanOrEqual(1);

    const big = await newCgroup("no-oom", limited(256 << 20));
    const fine = gatedShell(allocate);
    await big.join(fine.child.pid);
    fine.release();
    expect(await fine.child.exited).toBe(0);
  });

  it("caps a fork bomb at pids.max=16", async () => {
    const cg = await newCgroup("forkbomb", { pids: { limit: 16 } });
    const bomb = gatedShell(`for i in $(${BUSYBOX} seq 1 40); do ${BUSYBOX} sleep 30 & done; wait`);
    await cg.join(bomb.child.pid);
    bomb.release();
    let stderr = "";
    const decoder = new TextDecoder();
    const reading = (async () => {
      for await (const chunk of bomb.child.stderr) stderr += decoder.decode(chunk);
    })();
    await until(() => /fork/i.test(stderr));
    const { pids } = await cg.stats();
    expect(pids?.limit).toBe(16);
    expect(pids?.current).toBeLessThanOrEqual(16);
    expect(pids?.current).toBeGreaterThanOrEqual(15);
    // A task leaves the cgroup's list when it exits but stays charged to pids.current until its parent reaps
    // it, so the two agree only once the shell has reaped the children whose fork half-failed.
    await until(async () => (await cg.pids()).length === (await cg.stats()).pids?.current);
    await cg.killAll("SIGKILL");
    await bomb.child.exited;
    await reading;
    await cg.destroy();
    expect(cg.directories.some((d) => existsSync(d))).toBe(false);
  });

  it("writes CPU quota, period, shares and cpuset into the control files", async () => {
    const cg = await newCgroup("cpu", {
      cpu: { shares: 256, quota: 20_000, period: 50_000, cpus: "0", mems: "0" },
    });
    if (cg.paths.cpu !== undefined) {
      expect(controlFile(cg, "cpu", "cpu.cfs_quota_us", "").trim()).toBe("20000");
      expect(controlFile(cg, "cpu", "cpu.cfs_period_us", "").trim()).toBe("50000");
      expect(controlFile(cg, "cpu", "cpu.shares", "").trim()).toBe("256");
    } else {
      expect(controlFile(cg, "cpu", "", "cpu.max").trim()).toBe("20000 50000");
    }
    expect(controlFile(cg, "cpuset", "cpuset.cpus", "cpuset.cpus").trim()).toBe("0");
  });

  it("freezes and thaws a running process", async () => {
    const cg = await newCgroup("freeze");
    const loop = gatedShell("i=0; while :; do i=$((i+1)); echo $i; done");
    await cg.join(loop.child.pid);
    loop.release();
    let count = 0;
    const reading = (async () => {
      for await (const chunk of loop.child.stdout) count += chunk.length;
    })();
    await until(() => count > 0);
    await cg.freeze();
    if (cg.paths.freezer) expect(controlFile(cg, "freezer", "freezer.state", "").trim()).toBe("FROZEN");
    await Bun.sleep(50);
    const frozenAt = count;
    await Bun.sleep(300);
    expect(count).toBe(frozenAt);
    await cg.thaw();
    await until(() => count > frozenAt, 2_000);
    await cg.killAll("SIGTERM");
    await loop.child.exited;
    expect(loop.child.signalCode).toBe("SIGTERM");
    await reading;
  });

  // On cgroup v2 device rules need eBPF, which createCgroup refuses (NotSupported; see plan.test.ts).
  it.skipIf(!HAS_V1_DEVICES)("enforces v1 device rules: a denied /dev/null cannot be opened", async () => {
    const denied = await newCgroup("devices-deny", {
      devices: [{ allow: false, type: "c", major: 1, minor: 3, access: "rwm" }],
    });
    const writer = gatedShell("echo hi > /dev/null && echo wrote");
    await denied.join(writer.child.pid);
    writer.release();
    expect(await writer.child.exited).not.toBe(0);
    expect(await new Response(writer.child.stderr).text()).toMatch(/Operation not permitted/);
    expect(controlFile(denied, "devices", "devices.list", "")).not.toMatch(/^c 1:3 /m);

    const allowed = await newCgroup("devices-allow", {
      devices: [
        { allow: false, access: "rwm" },
        { allow: true, type: "c", major: 1, minor: 3, access: "rw" },
      ],
    });
    expect(controlFile(allowed, "devices", "devices.list", "").trim()).toBe("c 1:3 rw");
    const ok = gatedShell("echo hi > /dev/null && echo wrote");
    await allowed.join(ok.child.pid);
    ok.release();
    expect(await ok.child.exited).toBe(0);
    expect(await new Response(ok.child.stdout).text()).toBe("wrote\n");
  });

  // The v2 path, exercised on the unified hierarchy: a layout without the v1 devices controller.
  it.skipIf(!HAS_V2)("enforces device rules on cgroup v2 with an eBPF program", async () => {
    const { devices: _, ...v1 } = layout.v1;
    const cg = await createCgroup({
      id: "devices-v2",
      cgroupsPath: `${PARENT}/devices-v2`,
      layout: { ...layout, v1 },
      resources: {
        devices: [
          { allow: false, access: "rwm" },
          { allow: true, type: "c", major: 1, minor: 5, access: "rw" },
        ],
      },
    });
    handles.push(cg);
    const shell = gatedShell("head -c 3 /dev/zero | wc -c; echo hi > /dev/null && echo wrote");
    await cg.join(shell.child.pid);
    shell.release();
    expect(await shell.child.exited).not.toBe(0);
    expect((await new Response(shell.child.stdout).text()).trim()).toBe("3");
    expect(await new Response(shell.child.stderr).text()).toMatch(/\/dev\/null: Operation not permitted/);
  });

  it("waits for killed processes to leave, then removes every directory it created", async () => {
    const cg = await createCgroup({ id: "gone", cgroupsPath: `${PARENT}-own/gone`, layout });
    handles.push(cg);
    const sleeper = gatedShell(`exec ${BUSYBOX} sleep 30`);
    await cg.join(sleeper.child.pid);
    expect(await cg.pids()).toEqual([sleeper.child.pid]);
    await cg.killAll();
    await cg.destroy();
    expect(cg.created.length).toBeGreaterThan(0);
    for (const dir of [...cg.directories, ...cg.created]) expect(existsSync(dir)).toBe(false);
  });

  it("removes what it made when the kernel refuses a value", async () => {
    const path = `${PARENT}-bad/c`;
    let error: unknown;
    try {
      await createCgroup({ id: "bad", cgroupsPath: path, layout, resources: { cpu: { cpus: "4095" } } });
    } catch (err) {
      error = err;
    }
    expect(isMagikError(error, "InvalidInput")).toBe(true);
    const mount = layout.v1.cpuset?.mountPoint ?? layout.v2!.mountPoint;
    expect(existsSync(posix.join(mount, `${PARENT}-bad`))).toBe(false);
  });
});
