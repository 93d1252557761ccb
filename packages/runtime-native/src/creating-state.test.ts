/**
 * `state` while `create` runs: status creating (runtime-spec "State"), in this process, in another runtime
 * instance and in another process (the CLI); nothing left once create fails; a creator killed mid-create leaves
 * a container reported as stopped, which `delete` removes (as runc does).
 */
import { existsSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { RuntimeConfig } from "@magikrun/spec/runtime-config";
import type { ContainerState } from "@magikrun/spec/state";
import { rejectedMagikError } from "@magikrun/spec/test-support";
import { afterAll, describe, expect, it, onTestFinished } from "vitest";
import { loadBundle } from "./bundle.ts";
import { NativeRuntime } from "./native-runtime.ts";
import { haveBusybox, makeBundle, makeStateRoot, uniqueId } from "./test-support/busybox-bundle.ts";
import { isRoot, leftovers, removeAll } from "./test-support/run.ts";

const skip = !isRoot ? "needs root" : !haveBusybox() ? "needs busybox-static at /bin/busybox" : "";
const CLI = new URL("../../../apps/cli/src/main.ts", import.meta.url).pathname;
const NATIVE_RUNTIME = new URL("./native-runtime.ts", import.meta.url).pathname;
const BUNDLE = new URL("./bundle.ts", import.meta.url).pathname;

/**
 * A prestart hook (run by the creator, mid-create) that says it started, then waits for `release` (or for the
 * bundle to be gone: a killed creator's hook lives on).
 */
function blockingHook(dir: string): (c: RuntimeConfig) => void {
  return (c) => {
    c.hooks = {
      prestart: [
        {
          path: "/bin/sh",
          args: [
            "sh",
            "-c",
            `touch ${dir}/in-hook; while [ ! -e ${dir}/release ] && [ -e ${dir}/in-hook ]; do sleep 0.01; done`,
          ],
          timeout: 20,
        },
      ],
    };
    c.annotations = { "test.magikrun/creating": "yes" };
  };
}

async function until(what: string, check: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(5);
  }
}

async function errorCode(promise: Promise<unknown>): Promise<string> {
  return (await rejectedMagikError(promise)).code;
}

describe.skipIf(skip !== "")(`state during create${skip ? ` (skipped: ${skip})` : ""}`, () => {
  const state = makeStateRoot();
  const rt = new NativeRuntime({ root: state.root, onWarning: () => {} });
  afterAll(async () => {
    await removeAll(rt);
    state.cleanup();
  });

  // Also with the runtime forked as the reaper: the fork shares the creator's lock (see unlockAndClose).
  it.each([
    ["with the reaper program", ""],
    ["with the runtime forked as reaper", "1"],
  ])(
    "is creating for a concurrent query (same runtime, another instance, another process), then created, %s",
    async (_, noProgram) => {
      const saved = process.env.MAGIKRUN_NO_REAPER_PROGRAM;
      process.env.MAGIKRUN_NO_REAPER_PROGRAM = noProgram;
      onTestFinished(() => {
        if (saved === undefined) delete process.env.MAGIKRUN_NO_REAPER_PROGRAM;
        else process.env.MAGIKRUN_NO_REAPER_PROGRAM = saved;
      });
      const bundle = makeBundle(["true"]);
      blockingHook(bundle.dir)(bundle.config);
      bundle.save();
      const id = uniqueId("creating");
      try {
        const creating = rt.create({ id, bundle: loadBundle(bundle.dir), stdio: { stdin: "ignore" } });
        creating.catch(() => {});
        await until("the prestart hook", () => existsSync(join(bundle.dir, "in-hook")));
        const expected: ContainerState = {
          ociVersion: expect.any(String),
          id,
          status: "creating",
          bundle: bundle.dir,
          annotations: { "test.magikrun/creating": "yes" },
        };
        const mine = await rt.state(id);
        expect(mine).toEqual(expected);
        expect(mine.pid).toBeUndefined();
        const other = new NativeRuntime({ root: state.root, onWarning: () => {} });
        expect(await other.state(id)).toEqual(expected);
        expect((await other.list()).find((s) => s.id === id)).toEqual(expected);
        const cli = Bun.spawnSync([process.execPath, CLI, "--root", state.root, "state", id]);
        expect({ code: cli.exitCode, stderr: cli.stderr.toString() }).toEqual({ code: 0, stderr: "" });
        expect(JSON.parse(cli.stdout.toString())).toMatchObject({
          id,
          status: "creating",
          bundle: bundle.dir,
        });
        // Commands that change the container wait for the create instead of acting on a half-made one.
        let started = false;
        const start = other.start(id).then(() => {
          started = true;
        });
        await Bun.sleep(50);
        expect(started).toBe(false);
        writeFileSync(join(bundle.dir, "release"), "");
        const created = await creating;
        expect(created).toMatchObject({ id, status: "created", pid: expect.any(Number) });
        await start;
        expect((await rt.wait(id)).code).toBe(0);
        await other.delete(id);
        expect(leftovers(state.root, id)).toEqual([]);
      } finally {
        writeFileSync(join(bundle.dir, "release"), "");
        bundle.cleanup();
      }
    },
  );

  it("leaves nothing once create fails, and the concurrent query then finds nothing", async () => {
    const bundle = makeBundle(["true"]);
    blockingHook(bundle.dir)(bundle.config);
    bundle.config.hooks!.prestart!.push({ path: "/bin/false" });
    bundle.save();
    const id = uniqueId("failing");
    try {
      const creating = errorCode(
        rt.create({ id, bundle: loadBundle(bundle.dir), stdio: { stdin: "ignore" } }),
      );
      await until("the prestart hook", () => existsSync(join(bundle.dir, "in-hook")));
      expect((await rt.state(id)).status).toBe("creating");
      // ps lists the container's cgroup (named by the creating record), never the creating process itself.
      expect(await rt.pids(id)).not.toContain(process.pid);
      writeFileSync(join(bundle.dir, "release"), "");
      expect(await creating).toBe("CreateFailed");
      expect(await errorCode(rt.state(id))).toBe("ContainerNotFound");
      expect((await rt.list()).map((s) => s.id)).not.toContain(id);
      expect(leftovers(state.root, id)).toEqual([]);
    } finally {
      writeFileSync(join(bundle.dir, "release"), "");
      bundle.cleanup();
    }
  });

  it("a creator killed mid-create leaves a stopped container that delete removes", async () => {
    const bundle = makeBundle(["true"]);
    blockingHook(bundle.dir)(bundle.config);
    bundle.save();
    const id = uniqueId("killed");
    const script = `
      const { NativeRuntime } = await import(${JSON.stringify(NATIVE_RUNTIME)});
      const { loadBundle } = await import(${JSON.stringify(BUNDLE)});
      const rt = new NativeRuntime({ root: ${JSON.stringify(state.root)}, onWarning: () => {} });
      await rt.create({ id: ${JSON.stringify(id)}, bundle: loadBundle(${JSON.stringify(bundle.dir)}), stdio: { stdin: "ignore" } });
    `;
    const creator = Bun.spawn([process.execPath, "-e", script], { stdio: ["ignore", "ignore", "pipe"] });
    try {
      await until("the prestart hook", () => existsSync(join(bundle.dir, "in-hook")));
      expect((await rt.state(id)).status).toBe("creating");
      creator.kill("SIGKILL");
      await creator.exited;
      const stopped = await rt.state(id);
      expect(stopped).toMatchObject({ id, status: "stopped", bundle: bundle.dir });
      expect(stopped.pid).toBeUndefined();
      expect((await rt.list()).find((s) => s.id === id)?.status).toBe("stopped");
      expect(await errorCode(rt.start(id))).toBe("InvalidState");
      await rt.delete(id);
      expect(await errorCode(rt.state(id))).toBe("ContainerNotFound");
      expect(existsSync(join(state.root, id))).toBe(false);
      // The creator had made the cgroup; the creating record names it, so delete removes it too.
      expect(leftovers(state.root, id)).toEqual([]);
    } finally {
      creator.kill("SIGKILL");
      await creator.exited;
      writeFileSync(join(bundle.dir, "release"), "");
      bundle.cleanup();
      // Only if the test failed above: no cgroup of this container may outlive it.
      for (const dir of leftovers(state.root, id).filter((p) => p.startsWith("/sys/fs/cgroup/"))) {
        try {
          rmdirSync(dir);
        } catch {
          // still populated (a process of the half-made container): left as runc leaves it
        }
      }
    }
  });
});
