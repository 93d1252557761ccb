/**
 * Time namespaces (new with offsets, joined by path, joined by exec) and the hooks the container's own process
 * runs (createContainer before pivot_root, startContainer after start), with real containers as root. The hooks
 * are also run under Debian's runc 1.1.5 (which has no time namespaces) and must see the same things.
 */
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isMagikError } from "@magikrun/spec/errors";
import type { Hook, Hooks } from "@magikrun/spec/runtime-config";
import { afterAll, describe, expect, it } from "vitest";
import { loadBundle } from "./bundle.ts";
import { NativeRuntime } from "./native-runtime.ts";
import {
  haveBusybox,
  makeBundle,
  makeStateRoot,
  RUNC,
  type TestBundle,
  uniqueId,
} from "./test-support/busybox-bundle.ts";
import { isRoot, leftovers, removeAll, runToExit } from "./test-support/run.ts";

const skip = !isRoot ? "needs root" : !haveBusybox() ? "needs busybox-static at /bin/busybox" : "";
const PATH = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
const DAY = 86_400;

const hostUptime = () => Number(readFileSync("/proc/uptime", "utf8").split(" ")[0]);

describe.skipIf(skip !== "")(
  `time namespaces and in-container hooks${skip ? ` (skipped: ${skip})` : ""}`,
  () => {
    const state = makeStateRoot();
    const rt = new NativeRuntime({ root: state.root, onWarning: () => {} });
    afterAll(async () => {
      await removeAll(rt);
      state.cleanup();
    });

    it("a new time namespace gets its monotonic and boottime offsets before the process starts", async () => {
      const before = hostUptime();
      const { exit, stdout } = await runToExit(
        rt,
        ["sh", "-c", "cat /proc/uptime; cat /proc/self/timens_offsets; readlink /proc/self/ns/time"],
        (c) => {
          c.linux!.namespaces!.push({ type: "time" });
          c.linux!.timeOffsets = { monotonic: { secs: DAY, nanosecs: 5 }, boottime: { secs: 10 * DAY } };
        },
      );
      const after = hostUptime();
      expect(exit.code).toBe(0);
      const [uptime, monotonic, boottime, ns] = stdout.trim().split("\n");
      // /proc/uptime is CLOCK_BOOTTIME as the namespace sees it: the host's plus the offset
      const seen = Number(uptime!.split(" ")[0]);
      expect(seen).toBeGreaterThanOrEqual(Math.floor(before) + 10 * DAY);
      expect(seen).toBeLessThanOrEqual(Math.ceil(after) + 10 * DAY);
      expect([monotonic, boottime].map((l) => l!.trim().split(/\s+/).join(" "))).toEqual([
        `monotonic ${DAY} 5`,
        `boottime ${10 * DAY} 0`,
      ]);
      expect(ns).not.toBe(readlinkNs("self", "time"));
    });

    it("joins a time namespace by path, and exec joins the container's", async () => {
      const first = makeBundle(["sleep", "60"], (c) => {
        c.linux!.namespaces!.push({ type: "time" });
        c.linux!.timeOffsets = { boottime: { secs: 3 * DAY } };
      });
      const idA = uniqueId("timens-a");
      try {
        const a = await rt.create({ id: idA, bundle: loadBundle(first.dir), stdio: { stdin: "ignore" } });
        await rt.start(idA);
        const nsA = readlinkNs(String(a.pid), "time");
        expect(nsA).not.toBe(readlinkNs("self", "time"));
        const joined = await runToExit(
          rt,
          ["sh", "-c", "readlink /proc/self/ns/time; cat /proc/uptime"],
          (c) => {
            c.linux!.namespaces!.push({ type: "time", path: `/proc/${a.pid}/ns/time` });
          },
        );
        expect(joined.exit.code).toBe(0);
        const [nsB, uptimeB] = joined.stdout.trim().split("\n");
        expect(nsB).toBe(nsA);
        expect(Number(uptimeB!.split(" ")[0])).toBeGreaterThanOrEqual(3 * DAY);

        const out = `${first.dir}/exec-out`;
        const exec = await rt.exec(idA, {
          process: { args: ["sh", "-c", "readlink /proc/self/ns/time"], cwd: "/", user: { uid: 0, gid: 0 } },
          stdio: { stdin: "ignore", stdout: { path: out } },
        });
        expect((await exec.exit!).code).toBe(0);
        expect(readFileSync(out, "utf8").trim()).toBe(nsA);
        await rt.delete(idA, { force: true });
        expect(leftovers(state.root, idA)).toEqual([]);
      } finally {
        await rt.delete(idA, { force: true }).catch(() => {});
        first.cleanup();
      }
    });

    /** createContainer (host /bin/sh, before pivot_root) and startContainer (/hook.sh of the rootfs) recorders. */
    function hookedBundle(): TestBundle {
      const bundle = makeBundle([
        "sh",
        "-c",
        "cat /data/seen; readlink /proc/self/ns/mnt; cat /data/start; cat /data/order 2>/dev/null; true",
      ]);
      const rootfs = `${bundle.dir}/rootfs`;
      writeFileSync(
        `${rootfs}/hook.sh`,
        `#!/bin/sh\n{ id -u; readlink /proc/self/ns/mnt; grep NoNewPrivs /proc/self/status; grep -o '"status":"[a-z]*"'; } > /data/start\n`,
      );
      chmodSync(`${rootfs}/hook.sh`, 0o755);
      const config = bundle.config;
      config.process!.user = { uid: 1000, gid: 1000 };
      config.mounts!.push({ destination: "/data", type: "tmpfs", source: "tmpfs", options: ["mode=1777"] });
      config.hooks = {
        createRuntime: [
          { path: "/bin/sh", args: ["sh", "-c", `echo createRuntime > ${bundle.dir}/order`], env: [PATH] },
        ],
        createContainer: [
          {
            path: "/bin/sh",
            args: [
              "sh",
              "-c",
              `{ id -u; readlink /proc/self/ns/mnt; stat -f -c %T ${rootfs}/data; grep -o '"status":"[a-z]*"'; } > ${bundle.dir}/cc.out; ` +
                `echo from-hook > ${rootfs}/data/seen; echo createContainer >> ${bundle.dir}/order`,
            ],
            env: [PATH],
            timeout: 30,
          },
        ],
        startContainer: [{ path: "/hook.sh", env: ["PATH=/bin"] }],
      };
      bundle.save();
      return bundle;
    }

    /** What the hooks and the process saw, with namespace ids replaced by how they relate. */
    function observed(bundle: TestBundle, stdout: string) {
      const [seen, mnt, startUid, startMnt, nnp, startStatus] = stdout.trim().split("\n");
      const [ccUid, ccMnt, ccFs, ccStatus] = readFileSync(`${bundle.dir}/cc.out`, "utf8").trim().split("\n");
      const hostMnt = readlinkNs("self", "mnt");
      const where = (ns: string | undefined) => (ns === mnt ? "container" : ns === hostMnt ? "host" : ns);
      return {
        processSaw: seen,
        createContainer: { uid: ccUid, mnt: where(ccMnt), dataFs: ccFs, status: ccStatus },
        startContainer: { uid: startUid, mnt: where(startMnt), nnp, status: startStatus },
        order: readFileSync(`${bundle.dir}/order`, "utf8").trim().split("\n"),
        // written by the hook in the container's tmpfs: not on the host's rootfs
        onHost: existsSync(`${bundle.dir}/rootfs/data/seen`),
      };
    }

    const expected = {
      processSaw: "from-hook",
      createContainer: { uid: "0", mnt: "container", dataFs: "tmpfs", status: '"status":"creating"' },
      startContainer: { uid: "1000", mnt: "container", nnp: "NoNewPrivs:\t1", status: '"status":"created"' },
      order: ["createRuntime", "createContainer"],
      onHost: false,
    };

    it("createContainer runs in the container's mount namespace before pivot_root, startContainer inside it after start", async () => {
      const bundle = hookedBundle();
      const id = uniqueId("hooks");
      try {
        await rt.create({
          id,
          bundle: loadBundle(bundle.dir),
          stdio: { stdin: "ignore", stdout: { path: `${bundle.dir}/stdout` } },
        });
        // create returns after the createContainer hook (startContainer waits for start)
        expect(readFileSync(`${bundle.dir}/cc.out`, "utf8")).toContain('"status":"creating"');
        await rt.start(id);
        expect((await rt.wait(id)).code).toBe(0);
        await rt.delete(id);
        expect(observed(bundle, readFileSync(`${bundle.dir}/stdout`, "utf8"))).toEqual(expected);
      } finally {
        await rt.delete(id, { force: true }).catch(() => {});
        bundle.cleanup();
      }
    });

    it.skipIf(!existsSync(RUNC))("runc 1.1.5 runs the same hooks with the same view", () => {
      const bundle = hookedBundle();
      const runcRoot = mkdtempSync(join(tmpdir(), "magikrun-runc-"));
      const id = uniqueId("hooks-runc");
      try {
        const runc = Bun.spawnSync([RUNC, "--root", runcRoot, "run", "--bundle", bundle.dir, id], {
          stdio: ["ignore", "pipe", "pipe"],
        });
        Bun.spawnSync([RUNC, "--root", runcRoot, "delete", "--force", id], {
          stdio: ["ignore", "ignore", "ignore"],
        });
        expect(runc.exitCode).toBe(0);
        expect(observed(bundle, runc.stdout.toString())).toEqual(expected);
      } finally {
        rmSync(runcRoot, { recursive: true, force: true });
        bundle.cleanup();
      }
    });

    it("a failing or slow createRuntime/createContainer hook fails create and leaves nothing", async () => {
      const sh = (script: string): Hook => ({ path: "/bin/sh", args: ["sh", "-c", script] });
      for (const [hooks, message] of [
        [{ createContainer: [sh("exit 3")] }, "createContainer hook 0 (/bin/sh) exited with 3"],
        [
          { createContainer: [sh("true"), { path: "/bin/sleep", args: ["sleep", "30"], timeout: 1 }] },
          "createContainer hook 1 (/bin/sleep) timed out after 1s",
        ],
        // at the HOOKS_SYNC step, while the process waits between its mounts and pivot_root
        [
          { createRuntime: [sh("exit 4")], createContainer: [sh("true")] },
          "createRuntime hook 0 (/bin/sh) exited with 4",
        ],
      ] as [Hooks, string][]) {
        const bundle = makeBundle(["true"], (c) => {
          c.hooks = hooks;
        });
        const id = uniqueId("hook-fails");
        try {
          const err = await rt.create({ id, bundle: loadBundle(bundle.dir) }).then(
            () => undefined,
            (e: unknown) => e,
          );
          expect(isMagikError(err, "CreateFailed")).toBe(true);
          expect((err as Error).message).toBe(message);
          expect(leftovers(state.root, id)).toEqual([]);
        } finally {
          await rt.delete(id, { force: true }).catch(() => {});
          bundle.cleanup();
        }
      }
    });

    it("a failing startContainer hook stops the container before its program runs", async () => {
      const { exit, stdout, stderr } = await runToExit(rt, ["echo", "program ran"], (c) => {
        c.hooks = { startContainer: [{ path: "/bin/sh", args: ["sh", "-c", "exit 5"] }] };
      });
      expect(exit.code).toBe(126);
      expect(stdout).toBe("");
      expect(stderr).toContain("startContainer hook 0 (/bin/sh): exit status 5");
    });
  },
);

function readlinkNs(pid: string, ns: string): string {
  return readlinkSync(`/proc/${pid}/ns/${ns}`);
}
