/**
 * The same bundles under Debian's runc and under magikrun: what the container sees must be the same.
 * Outputs are compared verbatim except for values that name the container (ids, temp paths).
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { RuntimeConfig } from "@magikrun/spec";
import { afterAll, describe, expect, it } from "vitest";
import { loadBundle } from "./bundle.ts";
import { NativeRuntime } from "./native-runtime.ts";
import { haveBusybox, makeBundle, makeStateRoot, RUNC, uniqueId } from "./test-support/busybox-bundle.ts";
import { isRoot, leftovers, removeAll, runcCreate, runcWaitStopped, runToExit } from "./test-support/run.ts";

const skip = !isRoot
  ? "needs root"
  : !haveBusybox()
    ? "needs busybox-static at /bin/busybox"
    : !existsSync(RUNC)
      ? "needs Debian's runc at /usr/sbin/runc"
      : "";

interface Outcome {
  code: number;
  stdout: string;
}

type Propagation = NonNullable<NonNullable<RuntimeConfig["linux"]>["rootfsPropagation"]>;

function sh(...argv: string[]): void {
  const r = Bun.spawnSync(argv, { stdio: ["ignore", "ignore", "pipe"] });
  if (r.exitCode !== 0) throw new Error(`${argv.join(" ")}: ${r.stderr.toString().trim()}`);
}

/**
 * "mountpoint propagation fstype source" per line of a mountinfo, peer group numbers dropped (they differ from
 * run to run): e.g. "/data/sub shared,master tmpfs hostbind". Sorted, cgroup hierarchies aside, as in the mount
 * table test (runc masks and remounts read-only in another order).
 */
function propagationTable(mountinfo: string): string[] {
  return mountinfo
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const f = line.split(" ");
      const dash = f.indexOf("-", 6);
      const tags = f.slice(6, dash).map((t) => t.replace(/:\d+$/, ""));
      return `${f[4]} ${tags.join(",") || "private"} ${f[dash + 1]} ${f[dash + 2]}`;
    })
    .filter((line) => !line.startsWith("/sys/fs/cgroup/"))
    .sort();
}

describe.skipIf(skip !== "")(`differential: runc vs magikrun${skip ? ` (skipped: ${skip})` : ""}`, () => {
  const state = makeStateRoot();
  const runcRoot = mkdtempSync(join(tmpdir(), "magikrun-runc-"));
  const rt = new NativeRuntime({ root: state.root, onWarning: () => {} });
  afterAll(async () => {
    await removeAll(rt);
    state.cleanup();
    rmSync(runcRoot, { recursive: true, force: true });
  });

  async function both(script: string, edit?: (c: RuntimeConfig) => void): Promise<[Outcome, Outcome]> {
    const bundle = makeBundle(["sh", "-c", script], edit);
    const id = uniqueId("diff");
    try {
      const runc = Bun.spawnSync([RUNC, "--root", runcRoot, "run", "--bundle", bundle.dir, id], {
        stdio: ["ignore", "pipe", "pipe"],
      });
      // runc run deletes the container when it exits; make sure of it whatever happened.
      Bun.spawnSync([RUNC, "--root", runcRoot, "delete", "--force", id], {
        stdio: ["ignore", "ignore", "ignore"],
      });
      const ours = await runToExit(rt, ["sh", "-c", script], edit);
      expect(leftovers(state.root, ours.id)).toEqual([]);
      return [
        { code: runc.exitCode ?? -1, stdout: runc.stdout.toString() },
        { code: ours.exit.code, stdout: ours.stdout },
      ];
    } finally {
      bundle.cleanup();
    }
  }

  it("capabilities, no_new_privs and seccomp state", async () => {
    const [runc, ours] = await both("grep -E '^(Cap|NoNewPrivs|Seccomp:)' /proc/self/status");
    expect(ours).toEqual(runc);
    expect(ours.stdout).toContain("CapBnd:\t0000000020000420");
  });

  it("the mount table (cgroup hierarchies aside)", async () => {
    const script = "awk '$5 !~ /^\\/sys\\/fs\\/cgroup\\// {print $5, $6, $9}' /proc/self/mountinfo | sort";
    const [runc, ours] = await both(script);
    expect(ours).toEqual(runc);
  });

  it("hostname, uid, gid, groups, cwd and umask of a non-root user", async () => {
    const [runc, ours] = await both("hostname; id; pwd; umask; touch /tmp/f; stat -c %a /tmp/f", (c) => {
      c.root!.readonly = false;
      c.mounts!.push({ destination: "/tmp", type: "tmpfs", source: "tmpfs", options: ["mode=1777"] });
      c.hostname = "differential";
      c.process!.user = { uid: 1000, gid: 1000, additionalGids: [2000], umask: 0o077 };
      c.process!.cwd = "/home/user";
    });
    expect(ours).toEqual(runc);
    expect(ours.stdout).toContain("uid=1000(user) gid=1000(user) groups=2000(extra)");
  });

  it("rlimits", async () => {
    const [runc, ours] = await both("ulimit -a", (c) => {
      c.process!.rlimits = [
        { type: "RLIMIT_NOFILE", soft: 200, hard: 300 },
        { type: "RLIMIT_CORE", soft: 0, hard: 0 },
        { type: "RLIMIT_NPROC", soft: 100, hard: 100 },
      ];
    });
    expect(ours).toEqual(runc);
  });

  it("seccomp denials and their errno", async () => {
    const [runc, ours] = await both(
      "mkdir /tmp/d; echo mkdir=$?; chmod 600 /etc/passwd; echo chmod=$?",
      (c) => {
        c.linux!.seccomp = {
          defaultAction: "SCMP_ACT_ALLOW",
          syscalls: [
            { names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO", errnoRet: 1 },
            { names: ["chmod", "fchmodat"], action: "SCMP_ACT_ERRNO", errnoRet: 13 },
          ],
        };
      },
    );
    expect(ours).toEqual(runc);
    expect(ours.stdout).toBe("mkdir=1\nchmod=1\n");
  });

  it("exit codes and deaths by signal", async () => {
    for (const script of ["exit 7", "sh -c 'kill -9 $$'; exit $?", "sh -c 'kill -TERM $$'; echo $?"]) {
      const [runc, ours] = await both(script);
      expect(ours).toEqual(runc);
    }
  });

  it("sysctl, oom_score_adj, domainname and linux.devices", async () => {
    const script =
      "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/msgmax /proc/self/oom_score_adj /proc/sys/kernel/domainname; " +
      "stat -c '%n %F %a %t:%T %u:%g' /dev/fuse /dev/loop-control";
    const [runc, ours] = await both(script, (c) => {
      c.domainname = "example.test";
      c.process!.oomScoreAdj = 500;
      c.linux!.sysctl = { "net.ipv4.ip_forward": "1", "kernel.msgmax": "12345" };
      c.linux!.devices = [
        { path: "/dev/fuse", type: "c", major: 10, minor: 229, fileMode: 0o600, uid: 0, gid: 0 },
        {
          path: "/dev/loop-control",
          type: "c",
          major: 10,
          minor: 237,
          fileMode: 0o640,
          uid: 1000,
          gid: 1000,
        },
      ];
    });
    // runc 1.1.5 (Debian 12) ignores `domainname`; the spec says to set it, and magikrun does.
    const withoutDomain = (o: Outcome) => ({ ...o, stdout: o.stdout.split("\n").toSpliced(3, 1).join("\n") });
    expect(withoutDomain(ours)).toEqual(withoutDomain(runc));
    expect(runc.stdout.split("\n")[3]).toBe("(none)");
    expect(ours.stdout.split("\n").slice(0, 4)).toEqual(["1", "12345", "500", "example.test"]);
  });

  it("cgroup limits in effect", async () => {
    const script =
      "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/cpu/cpu.cfs_quota_us";
    const [runc, ours] = await both(script, (c) => {
      c.linux!.resources = {
        ...c.linux!.resources,
        memory: { limit: 64 * 1024 * 1024 },
        pids: { limit: 32 },
        cpu: { quota: 50_000, period: 100_000 },
      };
    });
    expect(ours).toEqual(runc);
    expect(ours.stdout).toBe("67108864\n32\n50000\n");
  });

  /**
   * What a container sees of mounts the host makes after start, under the rootfs (on /mnt) and under the source
   * of a bind mount (on /data/sub). The bundle directory is a shared mount of its own (this host's / is private,
   * so nothing would propagate otherwise). The container waits for /go, written by the host after its mounts.
   */
  async function hostMountsSeen(
    runtime: "runc" | "magikrun",
    rootfsPropagation: Propagation | undefined,
    bindPropagation: string | undefined,
  ): Promise<string[]> {
    const bundle = makeBundle(
      ["sh", "-c", "while [ ! -e /go ]; do usleep 5000; done; cat /proc/self/mountinfo"],
      (c) => {
        if (rootfsPropagation) c.linux!.rootfsPropagation = rootfsPropagation;
      },
    );
    const source = join(bundle.dir, "src");
    mkdirSync(join(source, "sub"), { recursive: true });
    mkdirSync(join(bundle.dir, "rootfs", "mnt"));
    bundle.config.mounts!.push({
      destination: "/data",
      type: "bind",
      source,
      options: ["rbind", ...(bindPropagation ? [bindPropagation] : [])],
    });
    bundle.save();
    const out = join(bundle.dir, "stdout");
    const err = join(bundle.dir, "stderr");
    writeFileSync(out, "");
    const mounted: string[] = [];
    const hostMounts = () => {
      for (const [name, dir] of [
        ["hostroot", join(bundle.dir, "rootfs", "mnt")],
        ["hostbind", join(source, "sub")],
      ] as const) {
        sh("mount", "-t", "tmpfs", name, dir);
        mounted.unshift(dir);
      }
      writeFileSync(join(bundle.dir, "rootfs", "go"), "");
    };
    const id = uniqueId(runtime);
    try {
      sh("mount", "--bind", bundle.dir, bundle.dir);
      mounted.unshift(bundle.dir);
      sh("mount", "--make-shared", bundle.dir);
      if (runtime === "runc") {
        const runc = (...args: string[]) => Bun.spawnSync([RUNC, "--root", runcRoot, ...args]);
        expect(runcCreate(runcRoot, bundle.dir, id, { out, err })).toEqual({ code: 0, stderr: "" });
        try {
          expect(runc("start", id).exitCode).toBe(0);
          hostMounts();
          await runcWaitStopped(runcRoot, id);
        } finally {
          runc("delete", "--force", id);
        }
      } else {
        await rt.create({
          id,
          bundle: loadBundle(bundle.dir),
          stdio: { stdin: "ignore", stdout: { path: out }, stderr: { path: err } },
        });
        try {
          await rt.start(id);
          hostMounts();
          expect((await rt.wait(id)).code).toBe(0);
        } finally {
          await rt.delete(id, { force: true });
        }
        expect(leftovers(state.root, id)).toEqual([]);
      }
      return propagationTable(readFileSync(out, "utf8"));
    } finally {
      for (const dir of mounted)
        Bun.spawnSync(["umount", "-l", dir], { stdio: ["ignore", "ignore", "ignore"] });
      bundle.cleanup();
    }
  }

  const arrived = (table: string[]) =>
    table.filter((line) => / host(root|bind)$/.test(line)).map((line) => line.split(" ")[0]);

  it("rootfsPropagation: host mounts made after start, and every mount's propagation, as under runc", async () => {
    // runc 1.1.5 applies rootfsPropagation to the host tree's copy before binding the rootfs (whose parent it
    // makes private when shared) and never after: with rshared, nothing of the host arrives.
    const expected: [Propagation | undefined, string[]][] = [
      [undefined, ["/data/sub", "/mnt"]],
      ["rslave", ["/data/sub", "/mnt"]],
      ["rprivate", []],
      ["rshared", []],
      ["slave", []],
      ["shared", []],
    ];
    for (const [propagation, seen] of expected) {
      const runc = await hostMountsSeen("runc", propagation, undefined);
      expect({ propagation, seen: arrived(runc) }).toEqual({ propagation, seen });
      expect({ propagation, table: await hostMountsSeen("magikrun", propagation, undefined) }).toEqual({
        propagation,
        table: runc,
      });
    }
    expect(readFileSync("/proc/self/mountinfo", "utf8")).not.toMatch(/hostroot|hostbind/);
  });

  it("propagation options of a bind mount (rslave, rshared, shared, rprivate), as under runc", async () => {
    for (const option of ["rslave", "rshared", "shared", "rprivate"]) {
      const runc = await hostMountsSeen("runc", undefined, option);
      const ours = await hostMountsSeen("magikrun", undefined, option);
      expect({ option, table: ours }).toEqual({ option, table: runc });
      if (option === "rshared") {
        // shared within the container, still a slave of the host's mount: the host's mount arrives.
        expect(runc).toContain("/data/sub shared,master tmpfs hostbind");
      }
      expect(arrived(runc).includes("/data/sub")).toBe(option !== "rprivate");
    }
    expect(readFileSync("/proc/self/mountinfo", "utf8")).not.toMatch(/hostroot|hostbind/);
  });
});
