/** The planner is pure: these tests need no root and no kernel, only the order and content of operations. */
import type { RuntimeConfig } from "@magikrun/spec";
import { thrownMagikError } from "@magikrun/spec/test-support";
import { describe, expect, it } from "vitest";
import { defaultSpec } from "./default-spec.ts";
import { CLONE_NEWTIME, CLONE_NS, type PlanInputs, planLaunch } from "./launch-plan.ts";
import { MS } from "./mount-options.ts";
import { encodePlan, OP, type PlannedOp } from "./plan-encoder.ts";

function inputs(edit?: (c: RuntimeConfig) => void, extra: Partial<PlanInputs> = {}): PlanInputs {
  const config = defaultSpec({ args: ["sh", "-c", "true"], terminal: false });
  edit?.(config);
  return {
    config,
    rootfs: "/bundle/rootfs",
    bundle: "/bundle",
    joinFds: {},
    fifoFd: 9,
    capabilityMask: (names) => names.reduce((m, n) => m | (1n << BigInt(n.length)), 0n),
    lastCap: 40,
    isDirectory: (p) => !p.endsWith(".conf"),
    ...extra,
  };
}

const index = (ops: PlannedOp[], op: number, from = 0) => ops.findIndex((o, i) => i >= from && o.op === op);
const lastIndex = (ops: PlannedOp[], op: number) => ops.map((o) => o.op).lastIndexOf(op as never);

describe("planLaunch", () => {
  it("creates a time namespace in the reaper with its offsets, as the plan's first record", () => {
    const plan = planLaunch(
      inputs((c) => {
        c.linux!.namespaces!.push({ type: "time" });
        c.linux!.timeOffsets = { boottime: { secs: -60, nanosecs: 5 }, monotonic: { secs: 86400 } };
      }),
    );
    expect(plan.ops[0]).toMatchObject({ op: OP.REAPER_TIMENS, ints: [86400n, 0n, -60n, 5n] });
    expect(plan.ops.filter((o) => o.op === OP.REAPER_TIMENS)).toHaveLength(1);
    expect(plan.cloneFlags & CLONE_NEWTIME).toBe(0); // clone(2) cannot create one
    expect(plan.newNamespaces).toContain("time");
    const joined = planLaunch(
      inputs((c) => c.linux!.namespaces!.push({ type: "time", path: "/proc/1/ns/time" }), {
        joinFds: { time: 14 },
      }),
    );
    expect(joined.ops[0]).toMatchObject({ op: OP.REAPER_SETNS, ints: [14n, BigInt(CLONE_NEWTIME)] });
    expect(joined.ops.filter((o) => o.op === OP.SETNS || o.op === OP.REAPER_SETNS)).toHaveLength(1);
    // offsets apply only to a namespace nobody entered yet: not with a joined one, nor an unknown clock
    for (const edit of [
      (c: RuntimeConfig) => {
        c.linux!.namespaces!.push({ type: "time", path: "/proc/1/ns/time" });
        c.linux!.timeOffsets = { monotonic: { secs: 1 } };
      },
      (c: RuntimeConfig) => {
        c.linux!.namespaces!.push({ type: "time" });
        c.linux!.timeOffsets = { realtime: { secs: 1 } };
      },
      (c: RuntimeConfig) => {
        c.linux!.namespaces!.push({ type: "time" });
        c.linux!.timeOffsets = { monotonic: { nanosecs: 1_000_000_000 } };
      },
    ]) {
      expect(thrownMagikError(() => planLaunch(inputs(edit, { joinFds: { time: 14 } }))).code).toBe(
        "InvalidBundle",
      );
    }
  });

  it("runs createContainer hooks after the mounts and before pivot_root, startContainer after the fifo", () => {
    const hook = { path: "/bin/hook", args: ["hook", "a"], env: ["X=1"], timeout: 3 };
    const ops = planLaunch(
      inputs(
        (c) => {
          c.process!.noNewPrivileges = true;
          c.linux!.seccomp = { defaultAction: "SCMP_ACT_ALLOW" };
        },
        {
          hookSync: true,
          createContainerHooks: { hooks: [hook], stateFd: 21 },
          startContainerHooks: { hooks: [{ path: "/x" }], stateFd: 22 },
          seccomp: { program: new Uint8Array(8), flags: 0 },
        },
      ),
    ).ops;
    const create = index(ops, OP.HOOK);
    const start = index(ops, OP.HOOK, create + 1);
    expect(ops[create]).toMatchObject({
      label: "createContainer hook 0 (/bin/hook)",
      ints: [21n, 3000n, 2n, 1n],
      strs: ["/bin/hook", "hook", "a", "X=1"],
    });
    expect(ops[start]).toMatchObject({ ints: [22n, 0n, 1n, 0n], strs: ["/x", "/x"] });
    expect(lastIndex(ops, OP.MOUNT)).toBeLessThan(index(ops, OP.HOOKS_SYNC));
    expect(index(ops, OP.HOOKS_SYNC)).toBeLessThan(create);
    expect(create).toBeLessThan(index(ops, OP.PIVOT));
    // as runc: after the fifo and the identity change, with no_new_privs, before the seccomp filter
    for (const before of [OP.FIFO_WAIT, OP.SETRESUID, OP.CAPSET, OP.NNP]) {
      expect(index(ops, before)).toBeLessThan(start);
    }
    expect(start).toBeLessThan(index(ops, OP.SECCOMP));
    expect(index(planLaunch(inputs()).ops, OP.HOOKS_SYNC)).toBe(-1);
  });

  it("turns new namespaces into clone flags and joined ones into setns, user first", () => {
    const plan = planLaunch(
      inputs(
        (c) => {
          c.linux!.namespaces = [
            { type: "mount" },
            { type: "network", path: "/proc/1/ns/net" },
            { type: "user", path: "/proc/1/ns/user" },
            { type: "pid", path: "/proc/1/ns/pid" },
            { type: "uts" },
          ];
        },
        { joinFds: { network: 11, user: 12, pid: 13 } },
      ),
    );
    expect(plan.cloneFlags).toBe(CLONE_NS.mount | CLONE_NS.uts);
    expect(plan.pidNsFd).toBe(13);
    const setns = plan.ops.filter((o) => o.op === OP.SETNS).map((o) => o.ints[0]);
    expect(setns).toEqual([12n, 11n]);
    expect(index(plan.ops, OP.SETNS)).toBeLessThan(index(plan.ops, OP.SYNC_WAIT));
  });

  it("orders the setup: sync, mounts, pivot, masks, then identity, fifo, privileges, seccomp, execve", () => {
    const { ops } = planLaunch(
      inputs(
        (c) => {
          c.process!.user = { uid: 1000, gid: 1000 };
          c.linux!.seccomp = { defaultAction: "SCMP_ACT_ALLOW" };
        },
        { seccomp: { program: new Uint8Array(16), flags: 0 } },
      ),
    );
    const pivot = index(ops, OP.PIVOT);
    expect(index(ops, OP.SYNC_WAIT)).toBeLessThan(index(ops, OP.BIND_ROOTFS));
    expect(lastIndex(ops, OP.MOUNT)).toBeLessThan(pivot);
    expect(lastIndex(ops, OP.MKNOD)).toBeLessThan(pivot);
    expect(index(ops, OP.MASK)).toBeGreaterThan(pivot);
    expect(index(ops, OP.REMOUNT_ROOT_RO)).toBeGreaterThan(lastIndex(ops, OP.READONLY));
    // The fifo is waited on while still root; uid and capabilities change after start.
    expect(index(ops, OP.READY)).toBeLessThan(index(ops, OP.FIFO_WAIT));
    expect(index(ops, OP.FIFO_WAIT)).toBeLessThan(index(ops, OP.SETRESUID));
    expect(index(ops, OP.SETRESUID)).toBeLessThan(index(ops, OP.CAPSET));
    // no_new_privs is set, so the filter goes last, right before execve.
    expect(ops.slice(-3).map((o) => o.op)).toEqual([OP.NNP, OP.SECCOMP, OP.EXEC]);
    expect(ops.at(-2)!.ints.slice(0, 2)).toEqual([2n, 0n]);
  });

  it("installs seccomp before dropping capabilities when no_new_privs is off", () => {
    const { ops } = planLaunch(
      inputs((c) => (c.process!.noNewPrivileges = false), {
        seccomp: { program: new Uint8Array(8), flags: 1 },
      }),
    );
    expect(index(ops, OP.SECCOMP)).toBeLessThan(index(ops, OP.CAPSET));
    expect(index(ops, OP.NNP)).toBe(-1);
  });

  it("makes bind mounts read-only with a remount and keeps fs options as data", () => {
    const { ops } = planLaunch(
      inputs((c) =>
        c.mounts!.push(
          {
            destination: "/etc/app.conf",
            type: "bind",
            source: "app.conf",
            options: ["rbind", "ro", "nosuid", "rprivate"],
          },
          { destination: "/scratch", type: "tmpfs", source: "tmpfs", options: ["size=1m", "noexec"] },
        ),
      ),
    );
    const bind = ops.find((o) => o.op === OP.MOUNT && o.strs[1] === "/etc/app.conf")!;
    expect(bind.strs.slice(0, 2)).toEqual(["/bundle/app.conf", "/etc/app.conf"]);
    expect(bind.ints).toEqual([
      BigInt(MS.BIND | MS.REC),
      BigInt(MS.PRIVATE | MS.REC),
      1n,
      BigInt(MS.RDONLY | MS.NOSUID),
    ]);
    const tmpfs = ops.find((o) => o.op === OP.MOUNT && o.strs[1] === "/scratch")!;
    expect(tmpfs.strs).toEqual(["tmpfs", "/scratch", "tmpfs", "size=1m"]);
    expect(tmpfs.ints[0]).toBe(BigInt(MS.NOEXEC));
  });

  it("raises only ambient capabilities that are also permitted and inheritable, and says so in the debug log", () => {
    const warnings: string[] = [];
    const debug: string[] = [];
    const { ops } = planLaunch(
      inputs(
        (c) =>
          (c.process!.capabilities = {
            permitted: ["CAP_KILL", "CAP_CHOWN"],
            inheritable: ["CAP_KILL"],
            ambient: ["CAP_KILL", "CAP_CHOWN"],
          }),
        { warn: (m) => warnings.push(m), debug: (m) => debug.push(m) },
      ),
    );
    expect(ops.find((o) => o.op === OP.AMBIENT)!.ints).toEqual([1n << BigInt("CAP_KILL".length)]);
    expect(debug).toEqual([expect.stringContaining("CAP_CHOWN")]);
    // runc's default spec has ambient capabilities and no inheritable set: expected, so not a warning.
    expect(warnings).toEqual([]);
  });

  it("refuses configs it cannot honour, naming the field", () => {
    expect(
      thrownMagikError(() => planLaunch(inputs((c) => (c.linux!.timeOffsets = { monotonic: { secs: 5 } })))),
    ).toMatchObject({ code: "InvalidBundle", details: { field: "linux.timeOffsets" } });
    expect(
      thrownMagikError(() =>
        planLaunch(
          inputs((c) => (c.linux!.namespaces = c.linux!.namespaces!.filter((n) => n.type !== "uts"))),
        ),
      ),
    ).toMatchObject({ code: "InvalidBundle", details: { hostname: "runc" } });
    expect(
      thrownMagikError(() => planLaunch(inputs((c) => c.linux!.namespaces!.push({ type: "user" })))),
    ).toMatchObject({
      code: "InvalidBundle",
      details: { uidMappings: null },
    });
    expect(
      thrownMagikError(() => planLaunch(inputs((c) => c.linux!.namespaces!.push({ type: "pid" })))),
    ).toMatchObject({
      details: { namespace: "pid" },
    });
    expect(
      thrownMagikError(() => planLaunch(inputs((c) => (c.linux!.maskedPaths = ["relative"])))),
    ).toMatchObject({
      details: { field: "maskedPaths", path: "relative" },
    });
    expect(
      thrownMagikError(() => planLaunch(inputs((c) => (c.linux!.sysctl = { "../../etc": "1" })))),
    ).toMatchObject({
      details: { sysctl: "../../etc" },
    });
    expect(
      thrownMagikError(() =>
        planLaunch(inputs((c) => (c.process!.rlimits = [{ type: "RLIMIT_BOGUS", soft: 1, hard: 1 }]))),
      ),
    ).toMatchObject({ details: { rlimit: "RLIMIT_BOGUS" } });
    expect(thrownMagikError(() => planLaunch(inputs((c) => (c.process!.terminal = true))))).toMatchObject({
      code: "InvalidInput",
    });
  });
});

describe("encodePlan", () => {
  it("lays records out as the launcher reads them: 16-byte header, aligned i64s, NUL-terminated strings", () => {
    const bytes = encodePlan([
      { op: OP.SETHOSTNAME, ints: [], strs: ["box"], label: "set hostname box" },
      { op: OP.RLIMIT, ints: [7n, 10n, -1n], strs: [], label: "set RLIMIT_NOFILE" },
    ]);
    expect(bytes.byteOffset % 8).toBe(0);
    expect(bytes.length % 8).toBe(0);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const decoder = new TextDecoder();
    const records: { op: number; ints: bigint[]; strs: string[] }[] = [];
    for (let at = 0; at < bytes.length; ) {
      const op = view.getUint32(at, true);
      const nints = view.getUint32(at + 4, true);
      const nstrs = view.getUint32(at + 8, true);
      at += 16;
      const ints = Array.from({ length: nints }, (_, i) => view.getBigInt64(at + 8 * i, true));
      at += 8 * nints;
      const strs: string[] = [];
      for (let i = 0; i < nstrs; i++) {
        const end = bytes.indexOf(0, at);
        strs.push(decoder.decode(bytes.subarray(at, end)));
        at = end + 1;
      }
      at = (at + 7) & ~7;
      records.push({ op, ints, strs });
    }
    expect(records).toEqual([
      { op: OP.SETHOSTNAME, ints: [], strs: ["box", "set hostname box"] },
      { op: OP.RLIMIT, ints: [7n, 10n, -1n], strs: ["set RLIMIT_NOFILE"] },
    ]);
  });

  it("refuses a NUL byte inside a string", () => {
    expect(() => encodePlan([{ op: OP.CHDIR, ints: [], strs: ["/a\0b"], label: "x" }])).toThrow(/NUL/);
  });
});
