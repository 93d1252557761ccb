/**
 * Attacks on the runtime, each one a known class of runc CVE: a mount redirected to the host by a symlink in
 * the image, a host fd reaching the container, and /proc access to the runtime's image before execve.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { RuntimeConfig } from "@magikrun/spec";
import { afterAll, describe, expect, it } from "vitest";
import { loadBundle } from "./bundle.ts";
import { NativeRuntime } from "./native-runtime.ts";
import { haveBusybox, makeBundle, makeStateRoot, uniqueId } from "./test-support/busybox-bundle.ts";
import { isRoot, leftovers, removeAll, runToExit } from "./test-support/run.ts";

const skip = !isRoot ? "needs root" : !haveBusybox() ? "needs busybox-static at /bin/busybox" : "";

const noCaps = (c: RuntimeConfig) => {
  delete c.process!.capabilities;
};

describe.skipIf(skip !== "")(`security${skip ? ` (skipped: ${skip})` : ""}`, () => {
  const state = makeStateRoot();
  const rt = new NativeRuntime({ root: state.root, onWarning: () => {} });
  const host = mkdtempSync(join(tmpdir(), "magikrun-host-"));
  afterAll(async () => {
    await removeAll(rt);
    state.cleanup();
    rmSync(host, { recursive: true, force: true });
  });

  it("resolves mount destinations inside the rootfs, whatever symlinks the image holds", async () => {
    const target = join(host, "target");
    mkdirSync(target);
    const bundle = makeBundle([
      "sh",
      "-c",
      "cut -d' ' -f5 /proc/self/mountinfo | grep -E 'made-by-mount|/file$' | sort",
    ]);
    try {
      const rootfs = join(bundle.dir, "rootfs");
      // An absolute link, a relative one climbing far above the root, and a link to a host file.
      symlinkSync(target, join(rootfs, "abs"));
      symlinkSync(`../../../../../../../../..${target}`, join(rootfs, "rel"));
      noCaps(bundle.config);
      bundle.config.mounts!.push(
        { destination: "/abs/made-by-mount", type: "tmpfs", source: "tmpfs" },
        { destination: "/rel/made-by-mount-2", type: "tmpfs", source: "tmpfs" },
        { destination: "/abs/file", type: "bind", source: "/etc/hostname", options: ["bind", "ro"] },
      );
      bundle.save();
      const id = uniqueId();
      await rt.create({
        id,
        bundle: loadBundle(bundle.dir),
        stdio: { stdout: { path: `${bundle.dir}/out` } },
      });
      await rt.start(id);
      expect(await rt.wait(id)).toEqual({ code: 0, reason: "exited" });
      await rt.delete(id);
      // Nothing was created on the host side of the links...
      expect(existsSync(join(target, "made-by-mount"))).toBe(false);
      expect(existsSync(join(target, "made-by-mount-2"))).toBe(false);
      expect(existsSync(join(target, "file"))).toBe(false);
      // ...the mounts landed where the links point when resolved inside the root.
      expect(existsSync(join(rootfs, target, "made-by-mount"))).toBe(true);
      expect(readFileSync(`${bundle.dir}/out`, "utf8").split("\n")).toEqual([
        `${target}/file`,
        `${target}/made-by-mount`,
        `${target}/made-by-mount-2`,
        "",
      ]);
      expect(leftovers(state.root, id)).toEqual([]);
    } finally {
      bundle.cleanup();
    }
  });

  it("lets no host fd reach the container process", async () => {
    // ls as pid 1: its own fds are 0-2 plus the directory it lists.
    const { stdout } = await runToExit(rt, ["sh", "-c", "ls /proc/self/fd; readlink /proc/self/cwd"], noCaps);
    expect(stdout.split("\n")).toEqual(["0", "1", "2", "3", "/", ""]);
  });

  it("refuses a cwd through /proc/self/fd (CVE-2024-21626) at create, leaving nothing", async () => {
    for (const fd of [3, 4, 5, 6, 7, 8, 9, 10, 15, 20]) {
      const bundle = makeBundle(["true"], (c) => {
        noCaps(c);
        c.process!.cwd = `/proc/self/fd/${fd}`;
      });
      const id = uniqueId();
      try {
        const err = await rt.create({ id, bundle: loadBundle(bundle.dir) }).catch((e) => e);
        expect(err).toMatchObject({
          code: "CreateFailed",
          details: { step: `change directory to /proc/self/fd/${fd}` },
        });
        expect(["ELOOP", "ENOENT"]).toContain(err.details.errno);
        expect(leftovers(state.root, id)).toEqual([]);
      } finally {
        bundle.cleanup();
      }
    }
  });

  it("keeps the process non-dumpable until execve (CVE-2019-5736): /proc/<pid>/exe is out of reach", async () => {
    const a = makeBundle(["sleep", "60"], noCaps);
    const b = makeBundle(["sleep", "60"], noCaps);
    const idA = uniqueId("a");
    const idB = uniqueId("b");
    try {
      const stateA = await rt.create({ id: idA, bundle: loadBundle(a.dir) });
      await rt.start(idA);
      // B joins A's pid namespace and stays created: still the runtime's image, waiting on its exec fifo.
      b.config.linux!.namespaces = b.config.linux!.namespaces!.map((ns) =>
        ns.type === "pid" ? { type: "pid", path: `/proc/${stateA.pid}/ns/pid` } : ns,
      );
      b.save();
      const stateB = await rt.create({ id: idB, bundle: loadBundle(b.dir) });
      const nsPid = readFileSync(`/proc/${stateB.pid}/status`, "utf8").match(/^NSpid:\s.*\s(\d+)$/m)?.[1];
      expect(Number(nsPid)).toBeGreaterThan(1);
      const probe = async () => {
        const out = `${a.dir}/probe-${Date.now()}`;
        const result = await rt.exec(idA, {
          process: {
            args: ["sh", "-c", `cat /proc/${nsPid}/exe > /dev/null && echo readable || echo denied`],
          },
          stdio: { stdout: { path: out }, stderr: "ignore" },
        });
        await result.exit;
        return readFileSync(out, "utf8").trim();
      };
      expect(await probe()).toBe("denied");
      // Control: once B has exec'd its own program it is dumpable again and the same probe succeeds.
      await rt.start(idB);
      expect(await probe()).toBe("readable");
      await rt.delete(idB, { force: true });
      await rt.delete(idA, { force: true });
      expect(leftovers(state.root, idA)).toEqual([]);
      expect(leftovers(state.root, idB)).toEqual([]);
    } finally {
      await rt.delete(idB, { force: true }).catch(() => {});
      await rt.delete(idA, { force: true }).catch(() => {});
      a.cleanup();
      b.cleanup();
    }
  });
});
