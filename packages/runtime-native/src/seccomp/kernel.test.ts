import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Seccomp } from "@magikrun/spec";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compileSeccompFilter, nativeArch } from "./compile.ts";

/** Filters installed in real processes by a small C helper built with gcc at test time. */

const BUSYBOX = ["/usr/bin/busybox", "/bin/busybox"].find((p) => existsSync(p));
const hasGcc = spawnSync("gcc", ["--version"]).status === 0;
const supportedHost = process.arch === "x64" || process.arch === "arm64";
const skipReason = !supportedHost
  ? `host architecture ${process.arch}`
  : !hasGcc
    ? "needs gcc"
    : BUSYBOX === undefined
      ? "needs busybox-static"
      : undefined;
if (skipReason !== undefined) console.warn(`seccomp kernel tests skipped: ${skipReason}`);

let dir: string;
let helper: string;
let count = 0;

/** Runs the helper under the compiled filter. */
function underFilter(seccomp: Seccomp, ...command: string[]) {
  const { program, flags } = compileSeccompFilter(seccomp, nativeArch());
  const file = join(dir, `filter-${count++}.bpf`);
  writeFileSync(file, program);
  const out = spawnSync(helper, [file, String(flags), ...command], { encoding: "utf8", cwd: dir });
  return { status: out.status, signal: out.signal, stdout: out.stdout.trim(), stderr: out.stderr.trim() };
}

const denyMkdir = (action: Seccomp["defaultAction"], errnoRet?: number): Seccomp => ({
  defaultAction: "SCMP_ACT_ALLOW",
  syscalls: [{ names: ["mkdir", "mkdirat"], action, ...(errnoRet === undefined ? {} : { errnoRet }) }],
});

describe.skipIf(skipReason !== undefined)("seccomp filters in real processes", () => {
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "magikrun-seccomp-"));
    helper = join(dir, "seccomp-run");
    const source = new URL("./testdata/seccomp-run.c", import.meta.url).pathname;
    const cc = spawnSync("gcc", ["-O2", "-Wall", "-o", helper, source], { encoding: "utf8" });
    if (cc.status !== 0) throw new Error(`gcc failed: ${cc.stderr}`);
  });

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("denies mkdir with EPERM, or the configured errno, and allows everything else", () => {
    const target = join(dir, "made");
    const denied = underFilter(denyMkdir("SCMP_ACT_ERRNO"), "exec", BUSYBOX!, "mkdir", target);
    expect(denied.status).not.toBe(0);
    expect(denied.stderr).toMatch(/Operation not permitted/);
    expect(existsSync(target)).toBe(false);

    const enosys = underFilter(denyMkdir("SCMP_ACT_ERRNO", 38), "exec", BUSYBOX!, "mkdir", target);
    expect(enosys.stderr).toMatch(/Function not implemented/);

    const allowed = underFilter({ defaultAction: "SCMP_ACT_ALLOW" }, "exec", BUSYBOX!, "mkdir", target);
    expect(allowed.status).toBe(0);
    expect(existsSync(target)).toBe(true);
  });

  it("kills the process with SIGSYS for KILL_PROCESS", () => {
    const killed = underFilter(denyMkdir("SCMP_ACT_KILL_PROCESS"), "exec", BUSYBOX!, "mkdir", join(dir, "k"));
    expect(killed.signal).toBe("SIGSYS");
  });

  it("compares all 64 bits of an argument: personality(0xffffffff) only", () => {
    const profile: Seccomp = {
      defaultAction: "SCMP_ACT_ALLOW",
      syscalls: [
        {
          names: ["personality"],
          action: "SCMP_ACT_ERRNO",
          args: [{ index: 0, value: 0xffff_ffff, op: "SCMP_CMP_NE" }],
        },
      ],
    };
    expect(underFilter(profile, "personality", "ffffffff").stdout).toBe("ok");
    expect(underFilter(profile, "personality", "0").stdout).toBe("errno 1");
    expect(underFilter(profile, "personality", "1ffffffff").stdout).toBe("errno 1");
    const masked: Seccomp = {
      defaultAction: "SCMP_ACT_ERRNO",
      defaultErrnoRet: 22,
      syscalls: [
        {
          names: ["personality"],
          action: "SCMP_ACT_ALLOW",
          args: [{ index: 0, value: 0xffff_0000, valueTwo: 0xffff_0000, op: "SCMP_CMP_MASKED_EQ" }],
        },
        {
          names: ["exit_group", "exit", "write", "fstat", "newfstatat", "brk", "mmap", "munmap"],
          action: "SCMP_ACT_ALLOW",
        },
      ],
    };
    expect(underFilter(masked, "personality", "ffffffff").stdout).toBe("ok");
    expect(underFilter(masked, "personality", "fffe0000").stdout).toBe("errno 22");
  });

  it("with default ERRNO, an allow list lets busybox run true, and exec fails without execve", () => {
    const needed = [
      "execve",
      "brk",
      "arch_prctl",
      "set_tid_address",
      "set_robust_list",
      "rseq",
      "prlimit64",
      "mprotect",
      "mmap",
      "munmap",
      "readlinkat",
      "readlink",
      "getuid",
      "geteuid",
      "getpid",
      "uname",
      "exit",
      "exit_group",
      "write",
      "fstat",
      "newfstatat",
    ];
    const allowList = (names: string[]): Seccomp => ({
      defaultAction: "SCMP_ACT_ERRNO",
      architectures: ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64"].filter(
        (a) => (nativeArch() === "x86_64" ? a !== "SCMP_ARCH_AARCH64" : a === "SCMP_ARCH_AARCH64"),
      ),
      syscalls: [{ names, action: "SCMP_ACT_ALLOW" }],
    });
    const ran = underFilter(allowList(needed), "exec", BUSYBOX!, "true");
    expect(ran).toMatchObject({ status: 0, stdout: "" });
    const noExec = underFilter(allowList(needed.filter((n) => n !== "execve")), "exec", BUSYBOX!, "true");
    expect(noExec).toMatchObject({ status: 101, stdout: "exec errno 1" });
    const noMkdir = underFilter(allowList(needed), "exec", BUSYBOX!, "mkdir", join(dir, "denied"));
    expect(noMkdir.status).not.toBe(0);
    expect(existsSync(join(dir, "denied"))).toBe(false);
  });

  it("installs with the LOG flag", () => {
    const logged = underFilter(
      { ...denyMkdir("SCMP_ACT_ERRNO"), flags: ["SECCOMP_FILTER_FLAG_LOG"] },
      "personality",
      "ffffffff",
    );
    expect(logged).toMatchObject({ status: 0, stdout: "ok" });
  });
});
