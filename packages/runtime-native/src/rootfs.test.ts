/**
 * The container's root: `--no-pivot` (MS_MOVE + chroot instead of pivot_root) and `linux.rootfsPropagation`,
 * each compared with Debian's runc on the same bundle.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { RuntimeConfig } from "@magikrun/spec/runtime-config";
import { afterAll, describe, expect, it } from "vitest";
import { loadBundle } from "./bundle.ts";
import { NativeRuntime } from "./native-runtime.ts";
import { haveBusybox, makeBundle, makeStateRoot, RUNC, uniqueId } from "./test-support/busybox-bundle.ts";
import { isRoot, leftovers, removeAll, runcCreate, runcWaitStopped } from "./test-support/run.ts";

const skip = !isRoot
  ? "needs root"
  : !haveBusybox()
    ? "needs busybox-static at /bin/busybox"
    : !existsSync(RUNC)
      ? "needs Debian's runc at /usr/sbin/runc"
      : "";

type Propagation = NonNullable<NonNullable<RuntimeConfig["linux"]>["rootfsPropagation"]>;

function sh(...argv: string[]): void {
  const r = Bun.spawnSync(argv, { stdio: ["ignore", "ignore", "pipe"] });
  if (r.exitCode !== 0) throw new Error(`${argv.join(" ")}: ${r.stderr.toString().trim()}`);
}

describe.skipIf(skip !== "")(
  `rootfs: --no-pivot and rootfsPropagation${skip ? ` (skipped: ${skip})` : ""}`,
  () => {
    const state = makeStateRoot();
    const runcRoot = mkdtempSync(join(tmpdir(), "magikrun-runc-"));
    const rt = new NativeRuntime({ root: state.root, onWarning: () => {} });
    afterAll(async () => {
      await removeAll(rt);
      state.cleanup();
      rmSync(runcRoot, { recursive: true, force: true });
    });

    const runc = (...args: string[]) =>
      Bun.spawnSync([RUNC, "--root", runcRoot, ...args], { stdio: ["ignore", "pipe", "pipe"] });

    /** Runs the bundle to completion under magikrun (API) with `noPivot`; stdout and exit code. */
    async function ours(
      dir: string,
      noPivot: boolean,
    ): Promise<{ code: number; stdout: string; id: string }> {
      const id = uniqueId("root");
      const out = join(dir, `stdout-${id}`);
      await rt.create({
        id,
        bundle: loadBundle(dir),
        noPivot,
        stdio: { stdin: "ignore", stdout: { path: out } },
      });
      await rt.start(id);
      const exit = await rt.wait(id);
      await rt.delete(id);
      return { code: exit.code, stdout: readFileSync(out, "utf8"), id };
    }

    it("--no-pivot: the process sees the same root as under runc --no-pivot, and nothing is left behind", async () => {
      // What the root looks like from inside: its entries, that `..` of / is /, the mount table it can see, and
      // that /proc is the container's own (pid 1 is the shell).
      const probe = [
        "ls /",
        "cd /.. && pwd && ls | wc -l",
        "grep -c . /proc/self/mountinfo",
        "awk '$5 == \"/\" { print $4 }' /proc/self/mountinfo",
        "tr '\\0' ' ' < /proc/1/cmdline; echo",
        "touch /written 2>/dev/null || echo read-only root",
        "exit 7",
      ].join("; ");
      const bundle = makeBundle(["sh", "-c", probe]);
      try {
        const id = uniqueId("runc");
        const reference = runc("run", "--no-pivot", "--bundle", bundle.dir, id);
        runc("delete", "--force", id);
        expect(reference.stderr.toString()).toBe("");
        const mine = await ours(bundle.dir, true);
        expect({ code: mine.code, stdout: mine.stdout }).toEqual({
          code: reference.exitCode,
          stdout: reference.stdout.toString(),
        });
        expect(mine.code).toBe(7);
        expect(mine.stdout).toContain(`${bundle.dir}/rootfs\n`);
        expect(mine.stdout).toContain("sh -c ");
        expect(mine.stdout).toContain("read-only root\n"); // root.readonly in the runc default spec
        expect(leftovers(state.root, mine.id)).toEqual([]);
        // And the same probe with pivot_root sees the same thing (the two paths differ only on the host side).
        const pivoted = await ours(bundle.dir, false);
        expect(pivoted.stdout).toBe(mine.stdout);
      } finally {
        bundle.cleanup();
      }
    });

    it("--no-pivot with a private rootfsPropagation is refused before anything exists, as runc refuses it", async () => {
      for (const propagation of ["private", "rprivate"] as const) {
        const bundle = makeBundle(["true"], (c) => {
          c.linux!.rootfsPropagation = propagation;
        });
        try {
          const id = uniqueId("runc");
          const reference = runc("run", "--no-pivot", "--bundle", bundle.dir, id);
          runc("delete", "--force", id);
          expect(reference.exitCode).not.toBe(0);
          expect(reference.stderr.toString()).toContain("not safe without pivot_root");

          const mine = uniqueId("np");
          const err = await rt
            .create({ id: mine, bundle: loadBundle(bundle.dir), noPivot: true })
            .catch((e) => e);
          expect(err).toMatchObject({
            code: "InvalidBundle",
            message: expect.stringContaining("not safe without pivot_root"),
            details: { rootfsPropagation: propagation, noPivot: true },
          });
          expect(leftovers(state.root, mine)).toEqual([]);
          // With pivot_root the same bundle runs.
          expect((await ours(bundle.dir, false)).code).toBe(0);
        } finally {
          bundle.cleanup();
        }
      }
    });

    /**
     * Whether a mount the host makes under the rootfs after the container was created reaches the container. The
     * bundle directory is made a shared mount of its own (on this host / is private, so nothing would propagate
     * otherwise); the host mounts a tmpfs on rootfs/mnt between create and start.
     */
    async function hostMountSeen(
      runtime: "runc" | "magikrun",
      propagation: Propagation | undefined,
    ): Promise<"propagated" | "isolated"> {
      const edit = (c: RuntimeConfig) => {
        if (propagation) c.linux!.rootfsPropagation = propagation;
      };
      const bundle = makeBundle(
        [
          "sh",
          "-c",
          'if grep -q " /mnt " /proc/self/mountinfo; then echo propagated; else echo isolated; fi',
        ],
        edit,
      );
      const mnt = join(bundle.dir, "rootfs", "mnt");
      mkdirSync(mnt);
      sh("mount", "--bind", bundle.dir, bundle.dir);
      const mounted = [bundle.dir];
      try {
        sh("mount", "--make-shared", bundle.dir);
        const id = uniqueId(runtime);
        const out = join(bundle.dir, "stdout");
        writeFileSync(out, "");
        if (runtime === "runc") {
          const err = join(bundle.dir, "stderr");
          expect(runcCreate(runcRoot, bundle.dir, id, { out, err })).toEqual({ code: 0, stderr: "" });
          try {
            sh("mount", "-t", "tmpfs", "hostside", mnt);
            mounted.unshift(mnt);
            expect(runc("start", id).exitCode).toBe(0);
            await runcWaitStopped(runcRoot, id);
          } finally {
            runc("delete", "--force", id);
          }
        } else {
          await rt.create({
            id,
            bundle: loadBundle(bundle.dir),
            stdio: { stdin: "ignore", stdout: { path: out } },
          });
          try {
            sh("mount", "-t", "tmpfs", "hostside", mnt);
            mounted.unshift(mnt);
            await rt.start(id);
            expect((await rt.wait(id)).code).toBe(0);
          } finally {
            await rt.delete(id, { force: true });
          }
          expect(leftovers(state.root, id)).toEqual([]);
        }
        const seen = readFileSync(out, "utf8").trim();
        if (seen !== "propagated" && seen !== "isolated") throw new Error(`unexpected output ${seen}`);
        return seen;
      } finally {
        for (const dir of mounted)
          Bun.spawnSync(["umount", "-l", dir], { stdio: ["ignore", "ignore", "ignore"] });
        bundle.cleanup();
      }
    }

    it("rootfsPropagation: host mounts under the rootfs reach the container exactly when they do under runc", async () => {
      // shared, rshared and slave are compared with runc itself in differential.test.ts.
      const expected: [Propagation | undefined, "propagated" | "isolated"][] = [
        [undefined, "propagated"], // runc's default is rslave
        ["rslave", "propagated"],
        ["private", "isolated"],
        ["rprivate", "isolated"],
      ];
      for (const [propagation, outcome] of expected) {
        const reference = await hostMountSeen("runc", propagation);
        expect({ propagation, seen: reference }).toEqual({ propagation, seen: outcome });
        expect({ propagation, seen: await hostMountSeen("magikrun", propagation) }).toEqual({
          propagation,
          seen: reference,
        });
      }
      // Nothing of the test's mounts remains on the host.
      expect(readFileSync("/proc/self/mountinfo", "utf8")).not.toContain("hostside");
    });
  },
);
