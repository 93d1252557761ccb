import { dlopen, FFIType } from "bun:ffi";
import { readFileSync } from "node:fs";
import { isMagikError, type RuntimeConfig } from "@magikrun/spec";
import { afterAll, describe, expect, it } from "vitest";
import { loadBundle } from "./bundle.ts";
import { NativeRuntime } from "./native-runtime.ts";
import { haveBusybox, makeBundle, makeStateRoot, uniqueId } from "./test-support/busybox-bundle.ts";
import { isRoot, leftovers, removeAll, runToExit } from "./test-support/run.ts";

const skip = !isRoot ? "needs root" : !haveBusybox() ? "needs busybox-static at /bin/busybox" : "";

/** Most tests run without capabilities: nothing they check needs one. */
const noCaps = (c: RuntimeConfig) => {
  delete c.process!.capabilities;
};

describe.skipIf(skip !== "")(`NativeRuntime lifecycle${skip ? ` (skipped: ${skip})` : ""}`, () => {
  const state = makeStateRoot();
  const rt = new NativeRuntime({ root: state.root, onWarning: () => {} });
  // Even when a test fails half-way, nothing it created may outlive the file.
  afterAll(async () => {
    await removeAll(rt);
    state.cleanup();
  });

  it("goes created → running → stopped and reports the exit code, leaving nothing behind", async () => {
    // pid 1 of a pid namespace only gets the signals it handles: trap TERM, as a real init would, and say when
    // the trap is set (a TERM that arrives before it is dropped, and the loop would run on).
    const bundle = makeBundle(
      ["sh", "-c", "trap 'exit 42' TERM; echo trapped; while true; do sleep 0.05; done"],
      noCaps,
    );
    const id = uniqueId();
    const out = `${bundle.dir}/stdout`;
    try {
      const created = await rt.create({
        id,
        bundle: loadBundle(bundle.dir),
        stdio: { stdout: { path: out } },
      });
      expect(created.status).toBe("created");
      expect(created.pid).toBeGreaterThan(0);
      expect((await rt.state(id)).status).toBe("created");
      await rt.start(id);
      expect((await rt.state(id)).status).toBe("running");
      await expect(rt.start(id)).rejects.toMatchObject({ code: "InvalidState" });
      await expect(rt.delete(id)).rejects.toMatchObject({ code: "DeleteFailed" });
      for (let i = 0; i < 500 && !readFileSync(out, "utf8").includes("trapped"); i++) await Bun.sleep(10);
      await rt.kill(id, "TERM");
      const exit = await rt.wait(id);
      expect(exit).toEqual({ code: 42, reason: "exited" });
      const stopped = await rt.state(id);
      expect(stopped.status).toBe("stopped");
      expect(stopped.pid).toBeUndefined();
      await rt.delete(id);
      expect(leftovers(state.root, id)).toEqual([]);
      await expect(rt.state(id)).rejects.toMatchObject({ code: "ContainerNotFound" });
    } finally {
      bundle.cleanup();
    }
  });

  it("clones the container without sharing the reaper's memory (and so its errno), with and without the program", async () => {
    // A CLONE_VM child has no TLS of its own: the reaper's failing close()s (EBADF) overwrote the child's errno
    // between a failing call and its check, and setup failed at random steps with EBADF (~1 run in 1000).
    if (process.arch !== "x64") return;
    const libc = dlopen("libc.so.6", {
      syscall: { args: [FFIType.i64, FFIType.i64, FFIType.i64, FFIType.i64], returns: FFIType.i64 },
    });
    const SYS_kcmp = 312;
    const KCMP_VM = 1;
    const bundle = makeBundle(["true"], noCaps);
    const saved = process.env.MAGIKRUN_NO_REAPER_PROGRAM;
    try {
      for (const noProgram of ["0", "1"]) {
        process.env.MAGIKRUN_NO_REAPER_PROGRAM = noProgram;
        const id = uniqueId();
        const { pid } = await rt.create({ id, bundle: loadBundle(bundle.dir) });
        const reaper = Number(/^PPid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]);
        // kcmp: 0 = the same mm, 1 or 2 = different ones
        expect(Number(libc.symbols.syscall(SYS_kcmp, reaper, pid!, KCMP_VM))).not.toBe(0);
        await rt.delete(id, { force: true });
      }
    } finally {
      if (saved === undefined) delete process.env.MAGIKRUN_NO_REAPER_PROGRAM;
      else process.env.MAGIKRUN_NO_REAPER_PROGRAM = saved;
      libc.close();
      bundle.cleanup();
    }
  });

  it("runs the process with the configured hostname, user, groups, cwd, env, umask and rlimits", async () => {
    const { exit, stdout } = await runToExit(
      rt,
      ["sh", "-c", "hostname; id -u; id -g; id -G; pwd; echo $GREETING; umask; ulimit -n"],
      (c) => {
        noCaps(c);
        c.hostname = "box-1";
        c.process!.user = { uid: 1000, gid: 1000, additionalGids: [2000, 3000], umask: 0o027 };
        c.process!.cwd = "/home/user";
        c.process!.env!.push("GREETING=hi there");
        c.process!.rlimits = [{ type: "RLIMIT_NOFILE", soft: 321, hard: 1024 }];
      },
    );
    expect(exit).toEqual({ code: 0, reason: "exited" });
    expect(stdout.split("\n")).toEqual([
      "box-1",
      "1000",
      "1000",
      "1000 2000 3000",
      "/home/user",
      "hi there",
      "0027",
      "321",
      "",
    ]);
  });

  it("gives the container its own pid namespace, a read-only root, masked and read-only paths", async () => {
    const { stdout } = await runToExit(
      rt,
      [
        "sh",
        "-c",
        "echo $$; touch /x 2>/dev/null && echo root-writable || echo root-ro; " +
          "wc -c < /proc/keys; echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo sys-writable || echo sys-ro; " +
          "grep -c ' / ro,' /proc/self/mountinfo; stat -c '%A %t:%T' /dev/null /dev/zero /dev/urandom /dev/tty",
      ],
      noCaps,
    );
    expect(stdout.split("\n")).toEqual([
      "1",
      "root-ro",
      "0",
      "sys-ro",
      "1",
      "crw-rw-rw- 1:3",
      "crw-rw-rw- 1:5",
      "crw-rw-rw- 1:9",
      "crw-rw-rw- 5:0",
      "",
    ]);
  });

  it("exec joins a running container and returns the exec'd process's exit code", async () => {
    const bundle = makeBundle(["sleep", "30"], (c) => {
      noCaps(c);
      c.hostname = "exec-target";
    });
    const id = uniqueId();
    try {
      await rt.create({ id, bundle: loadBundle(bundle.dir) });
      await rt.start(id);
      const out = `${bundle.dir}/exec.out`;
      const result = await rt.exec(id, {
        process: {
          args: ["sh", "-c", "hostname; echo $$; cat /proc/1/cmdline | tr '\\0' ' '; exit 5"],
          cwd: "/tmp",
        },
        stdio: { stdout: { path: out } },
      });
      expect(result.pid).toBeGreaterThan(0);
      expect(await result.exit).toMatchObject({ code: 5 });
      const [hostname, pid, init] = readFileSync(out, "utf8").split("\n");
      expect(hostname).toBe("exec-target");
      expect(Number(pid)).toBeGreaterThan(1);
      expect(init).toBe("sleep 30 ");
      await rt.delete(id, { force: true });
      expect(leftovers(state.root, id)).toEqual([]);
    } finally {
      bundle.cleanup();
    }
  });

  it("exec applies the container's capabilities, no_new_privs, seccomp, cgroup and user", async () => {
    const bundle = makeBundle(["sleep", "30"], (c) => {
      c.root!.readonly = false;
      c.process!.user = { uid: 1000, gid: 1000 };
      c.linux!.seccomp = {
        defaultAction: "SCMP_ACT_ALLOW",
        syscalls: [{ names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO", errnoRet: 1 }],
      };
    });
    const id = uniqueId("exec-sec");
    try {
      await rt.create({ id, bundle: loadBundle(bundle.dir) });
      await rt.start(id);
      const out = `${bundle.dir}/exec.out`;
      const result = await rt.exec(id, {
        process: {
          args: [
            "sh",
            "-c",
            "id -u; grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status; mkdir /tmp/x; echo mkdir=$?; grep -c magikrun/" +
              id +
              " /proc/self/cgroup",
          ],
        },
        stdio: { stdout: { path: out }, stderr: "ignore" },
      });
      expect(await result.exit).toMatchObject({ code: 0 });
      const lines = readFileSync(out, "utf8").split("\n");
      expect(lines.slice(0, 5)).toEqual([
        "1000",
        "CapEff:\t0000000000000000",
        "NoNewPrivs:\t1",
        "Seccomp:\t2",
        "mkdir=1",
      ]);
      expect(Number(lines[5])).toBeGreaterThan(0);
      await rt.delete(id, { force: true });
      expect(leftovers(state.root, id)).toEqual([]);
    } finally {
      bundle.cleanup();
    }
  });

  it("pauses and resumes through the freezer", async () => {
    const bundle = makeBundle(["sleep", "30"], noCaps);
    const id = uniqueId();
    try {
      await rt.create({ id, bundle: loadBundle(bundle.dir) });
      await rt.start(id);
      await rt.pause(id);
      expect((await rt.state(id)).status).toBe("paused");
      const pid = (await rt.state(id)).pid!;
      expect(readFileSync(`/proc/${pid}/status`, "utf8")).toMatch(/State:\s+[DS]/);
      await expect(rt.pause(id)).rejects.toMatchObject({ code: "InvalidState" });
      await rt.resume(id);
      expect((await rt.state(id)).status).toBe("running");
      await rt.delete(id, { force: true });
      expect(leftovers(state.root, id)).toEqual([]);
    } finally {
      bundle.cleanup();
    }
  });

  it("serializes concurrent commands on one container: one create and one delete win", async () => {
    const bundle = makeBundle(["sleep", "30"], noCaps);
    const id = uniqueId("race");
    try {
      const creates = await Promise.allSettled(
        Array.from({ length: 4 }, () => rt.create({ id, bundle: loadBundle(bundle.dir) })),
      );
      expect(creates.filter((r) => r.status === "fulfilled")).toHaveLength(1);
      for (const r of creates.filter((r) => r.status === "rejected")) {
        expect((r as PromiseRejectedResult).reason).toMatchObject({ code: "ContainerAlreadyExists" });
      }
      await rt.start(id);
      const deletes = await Promise.allSettled(
        Array.from({ length: 4 }, () => rt.delete(id, { force: true })),
      );
      expect(deletes.filter((r) => r.status === "fulfilled")).toHaveLength(1);
      for (const r of deletes.filter((r) => r.status === "rejected")) {
        expect((r as PromiseRejectedResult).reason).toMatchObject({ code: "ContainerNotFound" });
      }
      expect(leftovers(state.root, id)).toEqual([]);
    } finally {
      bundle.cleanup();
    }
  });

  it("checks ids, duplicates and MAX_CONTAINERS before creating anything", async () => {
    const bundle = makeBundle(["true"], noCaps);
    const limited = new NativeRuntime({ root: `${state.root}/limited`, limits: { MAX_CONTAINERS: 1 } });
    const id = uniqueId();
    try {
      await expect(limited.create({ id: "../evil", bundle: loadBundle(bundle.dir) })).rejects.toMatchObject({
        code: "InvalidContainerId",
        details: { id: "../evil" },
      });
      await limited.create({ id, bundle: loadBundle(bundle.dir) });
      await expect(limited.create({ id, bundle: loadBundle(bundle.dir) })).rejects.toMatchObject({
        code: "ContainerAlreadyExists",
      });
      const second = uniqueId();
      const err = await limited.create({ id: second, bundle: loadBundle(bundle.dir) }).catch((e) => e);
      expect(isMagikError(err, "ResourceExhausted")).toBe(true);
      expect(err.details).toMatchObject({ limit: "MAX_CONTAINERS", max: 1 });
      expect(leftovers(`${state.root}/limited`, second)).toEqual([]);
      expect((await limited.list()).map((s) => s.id)).toEqual([id]);
      await limited.delete(id);
      expect(leftovers(`${state.root}/limited`, id)).toEqual([]);
    } finally {
      bundle.cleanup();
    }
  });
});
