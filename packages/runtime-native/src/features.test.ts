/** Console over --console-socket, user namespaces with id mappings, and hooks with the state on stdin. */
import { chmodSync, closeSync, readFileSync, readSync } from "node:fs";
import type { RuntimeConfig } from "@magikrun/spec";
import { afterAll, describe, expect, it } from "vitest";
import { loadBundle } from "./bundle.ts";
import { NativeRuntime } from "./native-runtime.ts";
import { consoleSocket } from "./syscall.ts";
import { haveBusybox, makeBundle, makeStateRoot, uniqueId } from "./test-support/busybox-bundle.ts";
import { isRoot, leftovers, removeAll, runToExit } from "./test-support/run.ts";

const skip = !isRoot ? "needs root" : !haveBusybox() ? "needs busybox-static at /bin/busybox" : "";

const noCaps = (c: RuntimeConfig) => {
  delete c.process!.capabilities;
};

function readAll(fd: number): string {
  const chunks: Buffer[] = [];
  const buf = Buffer.alloc(4096);
  for (;;) {
    let n: number;
    try {
      n = readSync(fd, buf);
    } catch (err) {
      // A pty master reads EIO once the last slave fd is closed: that is its end of stream.
      if ((err as { code?: string }).code === "EIO") break;
      throw err;
    }
    if (n === 0) break;
    chunks.push(Buffer.from(buf.subarray(0, n)));
  }
  return Buffer.concat(chunks).toString();
}

describe.skipIf(skip !== "")(`features${skip ? ` (skipped: ${skip})` : ""}`, () => {
  const state = makeStateRoot();
  const rt = new NativeRuntime({ root: state.root, onWarning: () => {} });
  // Even when a test fails half-way, nothing it created may outlive the file.
  afterAll(async () => {
    await removeAll(rt);
    state.cleanup();
  });

  it("sends the pty master over the console socket; the process has a controlling terminal of the asked size", async () => {
    const bundle = makeBundle(["sh", "-c", "tty; stty size; test -t 0 && echo stdin-is-tty"], (c) => {
      noCaps(c);
      c.process!.terminal = true;
      c.process!.consoleSize = { height: 30, width: 100 };
    });
    const socketPath = `${bundle.dir}/console.sock`;
    const listener = consoleSocket.listen(socketPath);
    expect(listener).toBeGreaterThan(0);
    const id = uniqueId("tty");
    try {
      await rt.create({ id, bundle: loadBundle(bundle.dir), consoleSocket: socketPath });
      const master = consoleSocket.receive(listener, 5_000);
      expect(master).toBeGreaterThan(0);
      await rt.start(id);
      expect(await rt.wait(id)).toEqual({ code: 0, reason: "exited" });
      const output = readAll(master).replaceAll("\r", "");
      closeSync(master);
      expect(output).toBe("/dev/pts/0\n30 100\nstdin-is-tty\n");
      await rt.delete(id);
      expect(leftovers(state.root, id)).toEqual([]);
    } finally {
      closeSync(listener);
      bundle.cleanup();
    }
  });

  it("maps ids in a new user namespace: root inside, an unprivileged uid outside", async () => {
    const bundle = makeBundle(["sh", "-c", "id -u; cat /proc/self/uid_map; sleep 30"], (c) => {
      noCaps(c);
      c.linux!.namespaces!.push({ type: "user" });
      c.linux!.uidMappings = [{ containerID: 0, hostID: 200_000, size: 65_536 }];
      c.linux!.gidMappings = [{ containerID: 0, hostID: 200_000, size: 65_536 }];
    });
    // The mapped root (host uid 200000) must be able to reach the rootfs, as with runc.
    chmodSync(bundle.dir, 0o755);
    const id = uniqueId("userns");
    try {
      const created = await rt.create({
        id,
        bundle: loadBundle(bundle.dir),
        stdio: { stdout: { path: `${bundle.dir}/out` } },
      });
      await rt.start(id);
      for (let i = 0; i < 100 && !readFileSync(`${bundle.dir}/out`, "utf8").includes("65536"); i++)
        await Bun.sleep(20);
      expect(
        readFileSync(`${bundle.dir}/out`, "utf8")
          .split("\n")
          .map((l) => l.trim().split(/\s+/).join(" ")),
      ).toEqual(["0", "0 200000 65536", ""]);
      expect(readFileSync(`/proc/${created.pid}/status`, "utf8")).toMatch(/^Uid:\s+200000\s/m);
      await rt.delete(id, { force: true });
      expect(leftovers(state.root, id)).toEqual([]);
    } finally {
      bundle.cleanup();
    }
  });

  it("runs hooks with the container's state on stdin; a failing poststart is a warning", async () => {
    const warnings: string[] = [];
    const hooked = new NativeRuntime({ root: `${state.root}/hooks`, onWarning: (m) => warnings.push(m) });
    const bundle = makeBundle(["true"], noCaps);
    const record = (name: string) => ({
      path: "/bin/sh",
      args: ["sh", "-c", `cat > ${bundle.dir}/${name}.json`],
    });
    bundle.config.hooks = {
      createRuntime: [record("createRuntime")],
      poststart: [record("poststart"), { path: "/bin/false" }],
      poststop: [record("poststop")],
    };
    bundle.save();
    const id = uniqueId("hooks");
    try {
      const created = await hooked.create({ id, bundle: loadBundle(bundle.dir) });
      const seen = (name: string) => JSON.parse(readFileSync(`${bundle.dir}/${name}.json`, "utf8"));
      expect(seen("createRuntime")).toMatchObject({
        id,
        status: "creating",
        pid: created.pid,
        bundle: bundle.dir,
      });
      await hooked.start(id);
      expect(seen("poststart")).toMatchObject({ id });
      expect(warnings).toEqual([expect.stringContaining("poststart hook 1 (/bin/false)")]);
      await hooked.wait(id);
      await hooked.delete(id);
      expect(seen("poststop")).toMatchObject({ id, status: "stopped" });
      expect(seen("poststop").pid).toBeUndefined();
    } finally {
      bundle.cleanup();
    }
  });

  it.each([
    ["the launcher compiled by bun:ffi's TinyCC", { MAGIKRUN_LAUNCHER_CC: "1" }],
    ["the runtime forked as reaper (no magikrun-reaper program)", { MAGIKRUN_NO_REAPER_PROGRAM: "1" }],
  ])("runs with %s", (_name, env) => {
    const script = new URL("./test-support/run-once.ts", import.meta.url).pathname;
    const result = Bun.spawnSync(
      ["bun", script, "echo fallback; grep NoNewPrivs /proc/self/status; exit 4"],
      {
        env: { ...process.env, ...env },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    expect(result.stderr.toString()).toBe("");
    expect(JSON.parse(result.stdout.toString())).toEqual({ code: 4, stdout: "fallback\nNoNewPrivs:\t1\n" });
  });

  it("keeps runToExit honest: a container's output and exit code come back", async () => {
    const { exit, stdout } = await runToExit(rt, ["sh", "-c", "echo out; exit 9"], noCaps);
    expect(exit.code).toBe(9);
    expect(stdout).toBe("out\n");
  });
});
