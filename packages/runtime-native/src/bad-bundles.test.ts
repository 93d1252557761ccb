/** Bundles that cannot run: a clear error naming the failing step (and errno), and nothing left behind. */
import { rmSync, writeFileSync } from "node:fs";
import type { RuntimeConfig } from "@magikrun/spec";
import { afterAll, describe, expect, it } from "vitest";
import { loadBundle } from "./bundle.ts";
import { NativeRuntime } from "./native-runtime.ts";
import { haveBusybox, makeBundle, makeStateRoot, uniqueId } from "./test-support/busybox-bundle.ts";
import { isRoot, leftovers, removeAll } from "./test-support/run.ts";

const skip = !isRoot ? "needs root" : !haveBusybox() ? "needs busybox-static at /bin/busybox" : "";

describe.skipIf(skip !== "")(`bad bundles${skip ? ` (skipped: ${skip})` : ""}`, () => {
  const state = makeStateRoot();
  const rt = new NativeRuntime({ root: state.root, onWarning: () => {} });
  // Even when a test fails half-way, nothing it created may outlive the file.
  afterAll(async () => {
    await removeAll(rt);
    state.cleanup();
  });

  async function createFails(
    edit: (c: RuntimeConfig, dir: string) => void,
    expected: Record<string, unknown>,
  ): Promise<void> {
    const bundle = makeBundle(["true"]);
    const id = uniqueId("bad");
    try {
      edit(bundle.config, bundle.dir);
      bundle.save();
      const err = await (async () => rt.create({ id, bundle: loadBundle(bundle.dir) }))().catch((e) => e);
      expect(err).toMatchObject(expected);
      expect(err.hint).not.toBe("");
      expect(leftovers(state.root, id)).toEqual([]);
      expect(rt.store.ids()).not.toContain(id);
    } finally {
      bundle.cleanup();
    }
  }

  // The cgroup is made while the process starts: a limit the kernel refuses fails after the clone, and the
  // process, its reaper and the cgroup's directories must still all be gone.
  it("a cgroup limit the kernel refuses", () =>
    createFails(
      (c) => {
        c.linux!.resources = { ...c.linux!.resources, cpu: { quota: 500, period: 100_000 } };
      },
      { code: "InvalidInput", details: { file: "cpu.cfs_quota_us", errno: "EINVAL" } },
    ));

  it("missing rootfs", () =>
    createFails((_c, dir) => rmSync(`${dir}/rootfs`, { recursive: true }), {
      code: "InvalidBundle",
      details: { step: "resolve rootfs", errno: "ENOENT" },
    }));

  it("invalid JSON and schema violations", async () => {
    const bundle = makeBundle(["true"]);
    try {
      writeFileSync(`${bundle.dir}/config.json`, "{ not json");
      expect(() => loadBundle(bundle.dir)).toThrow(expect.objectContaining({ code: "InvalidBundle" }));
      writeFileSync(
        `${bundle.dir}/config.json`,
        JSON.stringify({ ociVersion: "9", process: { cwd: "rel" } }),
      );
      expect(() => loadBundle(bundle.dir)).toThrow(expect.objectContaining({ code: "InvalidBundle" }));
      rmSync(`${bundle.dir}/config.json`);
      expect(() => loadBundle(bundle.dir)).toThrow(
        expect.objectContaining({
          code: "InvalidBundle",
          details: expect.objectContaining({ errno: "ENOENT" }),
        }),
      );
    } finally {
      bundle.cleanup();
    }
  });

  it("a program that does not exist", () =>
    createFails((c) => (c.process!.args = ["/bin/no-such-program"]), {
      code: "CreateFailed",
      details: { step: "find executable /bin/no-such-program", errno: "ENOENT" },
    }));

  it("a program that is not executable", () =>
    createFails((c) => (c.process!.args = ["/etc/passwd"]), {
      code: "CreateFailed",
      details: { step: "find executable /etc/passwd", errno: "EACCES" },
    }));

  it("a missing cwd", () =>
    createFails((c) => (c.process!.cwd = "/no/such/dir"), {
      code: "CreateFailed",
      details: { step: "change directory to /no/such/dir", errno: "ENOENT" },
    }));

  it("a bind mount whose source is missing", () =>
    createFails(
      (c) =>
        c.mounts!.push({ destination: "/data", type: "bind", source: "/no/such/source", options: ["rbind"] }),
      { code: "InvalidBundle", details: { source: "/no/such/source" } },
    ));

  it("a mount the kernel refuses", () =>
    createFails((c) => c.mounts!.push({ destination: "/weird", type: "no-such-fs", source: "x" }), {
      code: "CreateFailed",
      details: { step: "mount no-such-fs on /weird", errno: "ENODEV" },
    }));

  it("unsupported settings are refused, not ignored", async () => {
    await createFails((c) => (c.process!.scheduler = { policy: "SCHED_FIFO" }), {
      code: "NotSupported",
      details: { field: "process.scheduler" },
    });
    await createFails((c) => (c.linux!.timeOffsets = { monotonic: { secs: 1 } }), {
      code: "InvalidBundle",
      details: { field: "linux.timeOffsets" },
    });
    await createFails(
      (c) => c.mounts!.push({ destination: "/t", type: "tmpfs", source: "t", options: ["tmpcopyup"] }),
      {
        code: "NotSupported",
        details: { option: "tmpcopyup" },
      },
    );
    await createFails((c) => (c.process!.terminal = true), { code: "InvalidInput" });
    await createFails(
      (c) => {
        c.hostname = "x";
        c.linux!.namespaces = c.linux!.namespaces!.filter((n) => n.type !== "uts");
      },
      {
        code: "InvalidBundle",
      },
    );
  });

  it("a failing hook", () =>
    createFails((c) => (c.hooks = { createRuntime: [{ path: "/bin/false" }] }), {
      code: "CreateFailed",
      details: { hook: "createRuntime", path: "/bin/false", exitCode: 1 },
    }));
});
