/**
 * The OCI commands driven as containerd's runc shim drives runc: `--root X --log F --log-format json` before the
 * command, `create --bundle B --pid-file P id`, `exec --process F --detach --pid-file P id`, `kill [--all]`,
 * `delete [--force]`, `state`, `ps --format json`. Each step is a separate CLI process, as with the shim.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { haveBusybox, makeBundle, makeStateRoot, uniqueId } from "@magikrun/runtime-native/test-support";
import { afterAll, describe, expect, it } from "vitest";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const skip = process.getuid?.() !== 0 ? "needs root" : !haveBusybox() ? "needs busybox-static" : "";

describe.skipIf(skip !== "")(`oci commands${skip ? ` (skipped: ${skip})` : ""}`, () => {
  const state = makeStateRoot();
  const log = join(state.root, "shim.log.json");
  afterAll(() => state.cleanup());

  // Output goes to files, not pipes: a detached container inherits the CLI's stdio (as with runc), and a pipe
  // held open by it would keep spawnSync waiting for EOF.
  let calls = 0;
  const cli = (...args: string[]) => {
    const out = join(state.root, `cli-${calls++}`);
    const r = Bun.spawnSync(
      [
        "sh",
        "-c",
        'exec "$@" >"$0.out" 2>"$0.err" </dev/null',
        out,
        "bun",
        MAIN,
        "--root",
        state.root,
        "--log",
        log,
        "--log-format",
        "json",
        ...args,
      ],
      { stdio: ["ignore", "ignore", "ignore"] },
    );
    return {
      code: r.exitCode,
      stdout: readFileSync(`${out}.out`, "utf8"),
      stderr: readFileSync(`${out}.err`, "utf8"),
    };
  };
  const status = (id: string) => JSON.parse(cli("state", id).stdout).status as string;

  it("create / start / state / exec / ps / kill / delete with the shim's flags", async () => {
    const bundle = makeBundle(["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.05; done"]);
    const id = uniqueId("shim");
    try {
      const pidFile = join(bundle.dir, "init.pid");
      expect(cli("create", "--bundle", bundle.dir, "--pid-file", pidFile, id)).toMatchObject({ code: 0 });
      const pid = Number(readFileSync(pidFile, "utf8"));
      const created = JSON.parse(cli("state", id).stdout);
      expect(created).toMatchObject({ ociVersion: "1.2.0", id, status: "created", pid, bundle: bundle.dir });
      expect(created.rootfs).toBe(join(bundle.dir, "rootfs"));
      expect(cli("start", id).code).toBe(0);
      expect(status(id)).toBe("running");

      const processFile = join(bundle.dir, "exec.json");
      writeFileSync(
        processFile,
        JSON.stringify({
          args: ["sh", "-c", "hostname > /tmp/exec-proof; sleep 30"],
          cwd: "/",
          user: { uid: 0, gid: 0 },
        }),
      );
      const execPid = join(bundle.dir, "exec.pid");
      expect(cli("exec", "--process", processFile, "--detach", "--pid-file", execPid, id).code).toBe(0);
      const execPidValue = Number(readFileSync(execPid, "utf8"));
      const ps = JSON.parse(cli("ps", "--format", "json", id).stdout) as number[];
      expect(ps).toContain(pid);
      expect(ps).toContain(execPidValue);
      expect(JSON.parse(cli("list", "--format", "json").stdout).map((c: { id: string }) => c.id)).toContain(
        id,
      );
      expect(cli("list", "-q").stdout.split("\n")).toContain(id);

      // The shim's kill is the init's signal; every creating process is gone: the reaper records the exit.
      expect(cli("kill", id, "15").code).toBe(0);
      for (let i = 0; i < 100 && status(id) !== "stopped"; i++) await Bun.sleep(20);
      expect(status(id)).toBe("stopped");
      expect(readFileSync(join(state.root, id, "exit"), "utf8")).toBe("0 0\n");
      expect(cli("kill", "--all", id, "KILL").code).toBe(0);
      expect(cli("delete", id).code).toBe(0);
      expect(existsSync(join(state.root, id))).toBe(false);
      const gone = cli("state", id);
      expect(gone.code).toBe(1);
      expect(gone.stderr).toContain("ContainerNotFound");
    } finally {
      cli("delete", "--force", id);
      bundle.cleanup();
    }
  });

  it("delete --force kills a running container; run returns the container's exit code", () => {
    const bundle = makeBundle(["sleep", "60"]);
    const id = uniqueId("force");
    try {
      expect(cli("run", "--detach", "--bundle", bundle.dir, id).code).toBe(0);
      expect(status(id)).toBe("running");
      expect(cli("delete", id)).toMatchObject({ code: 1 });
      expect(cli("delete", "--force", id).code).toBe(0);
      expect(existsSync(join(state.root, id))).toBe(false);
      bundle.config.process!.args = ["sh", "-c", "exit 3"];
      bundle.save();
      expect(cli("run", "-b", bundle.dir, id).code).toBe(3);
      expect(existsSync(join(state.root, id))).toBe(false);
    } finally {
      cli("delete", "--force", id);
      bundle.cleanup();
    }
  });

  it("expected conditions go to the debug log only; real warnings stay on stderr and in the log", () => {
    // The runc default spec: ambient capabilities and no inheritable set (runc 1.1 raises nothing, silently).
    const bundle = makeBundle(["true"]);
    const id = uniqueId("quiet");
    const logLines = () =>
      readFileSync(log, "utf8")
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { level: string; msg: string });
    try {
      expect(bundle.config.process!.capabilities!.ambient!.length).toBeGreaterThan(0);
      expect(bundle.config.process!.capabilities!.inheritable ?? []).toEqual([]);
      const before = existsSync(log) ? logLines().length : 0;
      const quiet = cli("run", "-b", bundle.dir, id);
      expect(quiet).toMatchObject({ code: 0, stderr: "" });
      expect(existsSync(log) ? logLines().slice(before) : []).toEqual([]);

      const debug = cli("--debug", "run", "-b", bundle.dir, id);
      expect(debug).toMatchObject({ code: 0, stderr: "" });
      const debugLines = logLines().slice(before);
      expect(debugLines.length).toBeGreaterThan(0);
      expect(debugLines.every((l) => l.level === "debug")).toBe(true);
      expect(debugLines.map((l) => l.msg)).toContainEqual(
        expect.stringMatching(
          /^ambient capability CAP_[A-Z_]+ is not also permitted and inheritable; not raised$/,
        ),
      );

      // A setting accepted but not enforced is still a warning, on stderr and in the log.
      bundle.config.process!.selinuxLabel = "system_u:system_r:container_t:s0";
      bundle.save();
      const before2 = logLines().length;
      const warned = cli("run", "-b", bundle.dir, id);
      expect(warned.code).toBe(0);
      expect(warned.stderr).toContain("magikrun: warning: process.selinuxLabel is ignored");
      expect(warned.stderr).not.toContain("ambient");
      expect(logLines().slice(before2)).toEqual([
        expect.objectContaining({ level: "warning", msg: expect.stringContaining("selinuxLabel") }),
      ]);
    } finally {
      cli("delete", "--force", id);
      bundle.cleanup();
    }
  });

  it("run relays the terminal when the config asks for one and no console socket is given", () => {
    const bundle = makeBundle(["sh", "-c", "tty; stty size; exit 6"]);
    const id = uniqueId("tty");
    try {
      bundle.config.process!.terminal = true;
      bundle.config.process!.consoleSize = { height: 24, width: 80 };
      bundle.save();
      const r = cli("run", "-b", bundle.dir, id);
      expect(r.code).toBe(6);
      expect(r.stdout.replaceAll("\r", "")).toBe("/dev/pts/0\n24 80\n");
      expect(existsSync(join(state.root, id))).toBe(false);
    } finally {
      cli("delete", "--force", id);
      bundle.cleanup();
    }
  });

  it("spec writes a runc-like config.json once; features and usage errors", () => {
    const dir = mkdtempSync(join(tmpdir(), "magikrun-spec-"));
    try {
      expect(cli("spec", "--bundle", dir).code).toBe(0);
      const config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
      expect(config).toMatchObject({ root: { path: "rootfs", readonly: true }, process: { args: ["sh"] } });
      expect(cli("spec", "--bundle", dir)).toMatchObject({ code: 2 });
      expect(JSON.parse(cli("features").stdout).linux.namespaces).toContain("pid");
      const bad = cli("kill", "some-id", "NOSUCHSIGNAL");
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain("InvalidInput");
      expect(cli("create", "--no-such-flag", "x").code).toBe(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
