import type { Seccomp, SeccompArg } from "@magikrun/spec";
import { thrownMagikError } from "@magikrun/spec/test-support";
import { describe, expect, it } from "vitest";
import { SECCOMP_RET } from "./actions.ts";
import { AUDIT_ARCH, abi, X32_SYSCALL_BIT } from "./arch.ts";
import { decode } from "./bpf.ts";
import { runSeccompBpf } from "./bpf-interpreter.ts";
import { compileSeccomp, compileSeccompFilter } from "./compile.ts";
import { syscallNumber } from "./syscalls.ts";

const ALLOW = SECCOMP_RET.ALLOW;
const EPERM = SECCOMP_RET.ERRNO | 1;
const KILL = SECCOMP_RET.KILL_THREAD;
const X64 = AUDIT_ARCH.X86_64;
const MKDIR = syscallNumber("x86_64", "mkdir")!;
const PERSONALITY = syscallNumber("x86_64", "personality")!;

describe("compileSeccomp program structure", () => {
  it("checks the architecture first and ends with the bad-architecture kill", () => {
    const program = compileSeccomp({ defaultAction: "SCMP_ACT_ALLOW" }, "x86_64");
    expect(program.byteLength % 8).toBe(0);
    const insns = decode(program);
    expect(insns[0]).toEqual({ code: 0x20, jt: 0, jf: 0, k: 4 });
    expect(insns[1]).toMatchObject({ code: 0x15, k: X64 });
    expect(insns.at(-1)).toEqual({ code: 0x06, jt: 0, jf: 0, k: KILL });
    expect(runSeccompBpf(program, { nr: MKDIR, arch: X64 })).toBe(ALLOW);
    expect(runSeccompBpf(program, { nr: MKDIR, arch: AUDIT_ARCH.I386 })).toBe(KILL);
    expect(runSeccompBpf(program, { nr: MKDIR | X32_SYSCALL_BIT, arch: X64 })).toBe(KILL);
  });

  it("maps actions to return values, ERRNO defaulting to EPERM", () => {
    const run = (s: Seccomp, nr = MKDIR) => runSeccompBpf(compileSeccomp(s, "x86_64"), { nr, arch: X64 });
    const rule = (action: Seccomp["defaultAction"], errnoRet?: number): Seccomp => ({
      defaultAction: "SCMP_ACT_ALLOW",
      syscalls: [{ names: ["mkdir"], action, ...(errnoRet === undefined ? {} : { errnoRet }) }],
    });
    expect(run(rule("SCMP_ACT_ERRNO"))).toBe(EPERM);
    expect(run(rule("SCMP_ACT_ERRNO", 38))).toBe(SECCOMP_RET.ERRNO | 38);
    expect(run(rule("SCMP_ACT_KILL"))).toBe(SECCOMP_RET.KILL_THREAD);
    expect(run(rule("SCMP_ACT_KILL_PROCESS"))).toBe(SECCOMP_RET.KILL_PROCESS);
    expect(run(rule("SCMP_ACT_KILL_THREAD"))).toBe(SECCOMP_RET.KILL_THREAD);
    expect(run(rule("SCMP_ACT_TRAP"))).toBe(SECCOMP_RET.TRAP);
    expect(run(rule("SCMP_ACT_TRACE", 7))).toBe(SECCOMP_RET.TRACE | 7);
    expect(run(rule("SCMP_ACT_LOG"))).toBe(SECCOMP_RET.LOG);
    expect(run({ defaultAction: "SCMP_ACT_ERRNO", defaultErrnoRet: 38 })).toBe(SECCOMP_RET.ERRNO | 38);
    expect(
      run({ defaultAction: "SCMP_ACT_ERRNO", syscalls: [{ names: ["mkdir"], action: "SCMP_ACT_ALLOW" }] }),
    ).toBe(ALLOW);
  });

  it("refuses NOTIFY, unknown flags and architectures; keeps known flags", () => {
    const notify = thrownMagikError(() => compileSeccomp({ defaultAction: "SCMP_ACT_NOTIFY" }, "x86_64"));
    expect(notify.code).toBe("NotSupported");
    expect(
      thrownMagikError(() =>
        compileSeccomp({ defaultAction: "SCMP_ACT_ALLOW", flags: ["SECCOMP_FILTER_FLAG_NOPE"] }, "x86_64"),
      ).details.value,
    ).toBe("SECCOMP_FILTER_FLAG_NOPE");
    expect(
      thrownMagikError(() =>
        compileSeccomp({ defaultAction: "SCMP_ACT_ALLOW", architectures: ["SCMP_ARCH_Z80"] }, "x86_64"),
      ).code,
    ).toBe("InvalidInput");
    const compiled = compileSeccompFilter(
      {
        defaultAction: "SCMP_ACT_ALLOW",
        flags: ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
      },
      "x86_64",
    );
    expect(compiled.flags).toBe(6);
  });

  it("ignores unknown syscall names and foreign architectures with warnings", () => {
    const compiled = compileSeccompFilter(
      {
        defaultAction: "SCMP_ACT_ALLOW",
        architectures: ["SCMP_ARCH_X86_64", "SCMP_ARCH_S390X"],
        syscalls: [{ names: ["mkdir", "no_such_call"], action: "SCMP_ACT_ERRNO" }],
      },
      "x86_64",
    );
    expect(compiled.warnings.join("\n")).toMatch(/SCMP_ARCH_S390X[\s\S]*no_such_call/);
    expect(runSeccompBpf(compiled.program, { nr: MKDIR, arch: X64 })).toBe(EPERM);
  });
});

describe("ENOSYS for syscalls newer than the profile (as runc)", () => {
  const ENOSYS = SECCOMP_RET.ERRNO | 38;
  const allowMkdir = (extra: Partial<Seccomp> = {}): Seccomp => ({
    defaultAction: "SCMP_ACT_ERRNO",
    architectures: ["SCMP_ARCH_X86_64", "SCMP_ARCH_X32"],
    syscalls: [
      { names: ["mkdir"], action: "SCMP_ACT_ALLOW" },
      { names: ["execve"], action: "SCMP_ACT_ERRNO" },
    ],
    ...extra,
  });

  it("answers ENOSYS above the newest named syscall, the default below it", () => {
    const program = compileSeccomp(allowMkdir(), "x86_64");
    expect(runSeccompBpf(program, { nr: MKDIR, arch: X64 })).toBe(ALLOW);
    expect(runSeccompBpf(program, { nr: 59, arch: X64 })).toBe(EPERM);
    expect(runSeccompBpf(program, { nr: MKDIR + 1, arch: X64 })).toBe(ENOSYS);
    expect(runSeccompBpf(program, { nr: 435, arch: X64 })).toBe(ENOSYS);
    expect(runSeccompBpf(program, { nr: X32_SYSCALL_BIT | 520, arch: X64 })).toBe(EPERM); // x32 execve
    expect(runSeccompBpf(program, { nr: X32_SYSCALL_BIT | 521, arch: X64 })).toBe(ENOSYS);
  });

  it("is left out for permissive defaults and when the default already is ENOSYS", () => {
    const logged = compileSeccomp(allowMkdir({ defaultAction: "SCMP_ACT_LOG" }), "x86_64");
    expect(runSeccompBpf(logged, { nr: 435, arch: X64 })).toBe(SECCOMP_RET.LOG);
    const enosys = compileSeccomp(allowMkdir({ defaultErrnoRet: 38 }), "x86_64");
    expect(runSeccompBpf(enosys, { nr: 435, arch: X64 })).toBe(ENOSYS);
    const eperm = compileSeccomp(allowMkdir({ defaultErrnoRet: 1 }), "x86_64");
    expect(runSeccompBpf(eperm, { nr: 1, arch: X64 })).toBe(EPERM);
  });
});

describe("x86 ABIs on an x86-64 host", () => {
  const profile: Seccomp = {
    defaultAction: "SCMP_ACT_ALLOW",
    architectures: ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    syscalls: [{ names: ["mkdir", "socketcall"], action: "SCMP_ACT_ERRNO" }],
  };
  const program = compileSeccomp(profile, "x86_64");

  it("filters i386 syscalls by their own numbers", () => {
    expect(runSeccompBpf(program, { nr: 39, arch: AUDIT_ARCH.I386 })).toBe(EPERM); // mkdir
    expect(runSeccompBpf(program, { nr: 102, arch: AUDIT_ARCH.I386 })).toBe(EPERM); // socketcall
    expect(runSeccompBpf(program, { nr: 83, arch: AUDIT_ARCH.I386 })).toBe(ALLOW); // i386 symlink
  });

  it("filters x32 syscalls by number with __X32_SYSCALL_BIT", () => {
    expect(runSeccompBpf(program, { nr: X32_SYSCALL_BIT | MKDIR, arch: X64 })).toBe(EPERM);
    expect(runSeccompBpf(program, { nr: X32_SYSCALL_BIT | 0, arch: X64 })).toBe(ALLOW);
    expect(runSeccompBpf(program, { nr: MKDIR, arch: X64 })).toBe(EPERM);
  });
});

/** Reference semantics of one OCI comparison on 64-bit values. */
function holds(arg: SeccompArg, v: bigint): boolean {
  const x = BigInt(arg.value);
  switch (arg.op) {
    case "SCMP_CMP_EQ":
      return v === x;
    case "SCMP_CMP_NE":
      return v !== x;
    case "SCMP_CMP_LT":
      return v < x;
    case "SCMP_CMP_LE":
      return v <= x;
    case "SCMP_CMP_GT":
      return v > x;
    case "SCMP_CMP_GE":
      return v >= x;
    case "SCMP_CMP_MASKED_EQ":
      return (v & x) === BigInt(arg.valueTwo ?? 0);
  }
}

describe("argument comparisons", () => {
  const OPS = [
    "SCMP_CMP_EQ",
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_GT",
    "SCMP_CMP_GE",
  ] as const;
  const VALUES = [0, 1, 0xffff_ffff, 0x1_0000_0000, 0x1_0000_0001, 0x7_ffff_ffff, 2 ** 52 + 3];
  const PROBES = [0n, 1n, 2n, 0xffff_fffen, 0xffff_ffffn, 0x1_0000_0000n, 0x1_0000_0001n, 0x1_0000_0002n];
  const probes = [...PROBES, ...VALUES.flatMap((v) => [BigInt(v) - 1n, BigInt(v), BigInt(v) + 1n])].filter(
    (p) => p >= 0n,
  );

  for (const op of OPS) {
    it(`${op} compares all 64 bits`, () => {
      for (const value of VALUES) {
        const arg: SeccompArg = { index: 2, value, op };
        const program = compileSeccomp(
          {
            defaultAction: "SCMP_ACT_ALLOW",
            syscalls: [{ names: ["personality"], action: "SCMP_ACT_ERRNO", args: [arg] }],
          },
          "x86_64",
        );
        for (const probe of probes) {
          const got = runSeccompBpf(program, { nr: PERSONALITY, arch: X64, args: [0n, 0n, probe] });
          expect([op, value, probe, got]).toEqual([op, value, probe, holds(arg, probe) ? EPERM : ALLOW]);
        }
      }
    });
  }

  it("MASKED_EQ masks both halves and compares with valueTwo", () => {
    const arg: SeccompArg = {
      index: 0,
      value: 0xff_0000_00ff,
      valueTwo: 0x12_0000_0034,
      op: "SCMP_CMP_MASKED_EQ",
    };
    const program = compileSeccomp(
      {
        defaultAction: "SCMP_ACT_ALLOW",
        syscalls: [{ names: ["personality"], action: "SCMP_ACT_ERRNO", args: [arg] }],
      },
      "x86_64",
    );
    for (const probe of [0x12_abcd_ef34n, 0x12_0000_0034n, 0x13_0000_0034n, 0x12_0000_0035n, 0n]) {
      const got = runSeccompBpf(program, { nr: PERSONALITY, arch: X64, args: [probe] });
      expect(got).toBe(holds(arg, probe) ? EPERM : ALLOW);
    }
  });

  it("ANDs conditions on different arguments, ORs repeated ones and entries for one syscall", () => {
    const program = compileSeccomp(
      {
        defaultAction: "SCMP_ACT_ERRNO",
        syscalls: [
          {
            names: ["personality"],
            action: "SCMP_ACT_ALLOW",
            args: [
              { index: 0, value: 1, op: "SCMP_CMP_EQ" },
              { index: 1, value: 2, op: "SCMP_CMP_EQ" },
            ],
          },
          {
            names: ["personality"],
            action: "SCMP_ACT_LOG",
            args: [
              { index: 0, value: 7, op: "SCMP_CMP_EQ" },
              { index: 0, value: 9, op: "SCMP_CMP_EQ" },
            ],
          },
        ],
      },
      "x86_64",
    );
    const run = (...args: bigint[]) => runSeccompBpf(program, { nr: PERSONALITY, arch: X64, args });
    expect(run(1n, 2n)).toBe(ALLOW);
    expect(run(1n, 3n)).toBe(EPERM);
    expect(run(7n, 0n)).toBe(SECCOMP_RET.LOG);
    expect(run(9n, 0n)).toBe(SECCOMP_RET.LOG);
    expect(run(8n, 0n)).toBe(EPERM);
  });

  it("refuses values that are not unsigned 64-bit integers", () => {
    const bad = (value: number) =>
      thrownMagikError(() =>
        compileSeccomp(
          {
            defaultAction: "SCMP_ACT_ALLOW",
            syscalls: [
              {
                names: ["personality"],
                action: "SCMP_ACT_ERRNO",
                args: [{ index: 0, value, op: "SCMP_CMP_EQ" }],
              },
            ],
          },
          "x86_64",
        ),
      );
    expect(bad(2 ** 64).code).toBe("InvalidInput");
    expect(bad(2 ** 64).details.field).toBe("linux.seccomp.syscalls[0].args[0].value");
  });
});

describe("program size", () => {
  it("reaches far targets through unconditional jumps", () => {
    const args = Array.from({ length: 120 }, (_, i) => ({
      index: 0,
      value: 1000 + i,
      op: "SCMP_CMP_EQ" as const,
    }));
    const program = compileSeccomp(
      {
        defaultAction: "SCMP_ACT_ERRNO",
        syscalls: [
          { names: ["personality"], action: "SCMP_ACT_ALLOW", args },
          { names: ["mkdir"], action: "SCMP_ACT_LOG" },
        ],
      },
      "x86_64",
    );
    expect(decode(program).length).toBeGreaterThan(600);
    expect(decode(program).some((i) => i.code === 0x05)).toBe(true);
    expect(runSeccompBpf(program, { nr: PERSONALITY, arch: X64, args: [1119n] })).toBe(ALLOW);
    expect(runSeccompBpf(program, { nr: PERSONALITY, arch: X64, args: [1120n] })).toBe(EPERM);
    expect(runSeccompBpf(program, { nr: MKDIR, arch: X64 })).toBe(SECCOMP_RET.LOG);
  });

  it("fits an allow list of every syscall of all three x86 ABIs", () => {
    const names = [...abi("SCMP_ARCH_X86_64").table.keys(), ...abi("SCMP_ARCH_X86").table.keys()];
    const compiled = compileSeccompFilter(
      {
        defaultAction: "SCMP_ACT_ERRNO",
        architectures: ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        syscalls: [{ names, action: "SCMP_ACT_ALLOW" }],
      },
      "x86_64",
    );
    expect(compiled.warnings).toEqual([]);
    expect(decode(compiled.program).length).toBeLessThan(4096);
    for (const [name, nr] of abi("SCMP_ARCH_X32").table) {
      expect([name, runSeccompBpf(compiled.program, { nr, arch: X64 })]).toEqual([name, ALLOW]);
    }
    expect(runSeccompBpf(compiled.program, { nr: 400, arch: X64 })).toBe(EPERM); // a hole in the table
    expect(runSeccompBpf(compiled.program, { nr: 999, arch: X64 })).toBe(SECCOMP_RET.ERRNO | 38);
  });

  it("refuses programs over the kernel's 4096 instructions", () => {
    const args = Array.from({ length: 900 }, (_, i) => ({ index: 0, value: i, op: "SCMP_CMP_EQ" as const }));
    const e = thrownMagikError(() =>
      compileSeccomp(
        {
          defaultAction: "SCMP_ACT_ERRNO",
          syscalls: [{ names: ["personality"], action: "SCMP_ACT_ALLOW", args }],
        },
        "x86_64",
      ),
    );
    expect(e.code).toBe("InvalidInput");
    expect(e.details.max).toBe(4096);
  });

  it("accepts libseccomp architecture names, refuses others, and reports warnings", () => {
    const seen: string[] = [];
    const profile: Seccomp = {
      defaultAction: "SCMP_ACT_ALLOW",
      syscalls: [{ names: ["frobnicate"], action: "SCMP_ACT_ERRNO" }],
    };
    const byName = compileSeccomp(profile, "SCMP_ARCH_X86_64", (m) => seen.push(m));
    expect(byName).toEqual(compileSeccomp(profile, "x86_64", () => {}));
    expect(seen).toEqual(["seccomp: syscalls unknown on x86_64 are ignored: frobnicate"]);
    expect(thrownMagikError(() => compileSeccomp(profile, "riscv64" as "x86_64")).code).toBe("NotSupported");
  });

  it("compiles for aarch64 with its own numbers and audit arch", () => {
    const program = compileSeccomp(
      { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["mkdirat"], action: "SCMP_ACT_ERRNO" }] },
      "aarch64",
    );
    expect(runSeccompBpf(program, { nr: 34, arch: AUDIT_ARCH.AARCH64 })).toBe(EPERM);
    expect(runSeccompBpf(program, { nr: 35, arch: AUDIT_ARCH.AARCH64 })).toBe(ALLOW);
    expect(runSeccompBpf(program, { nr: 34, arch: X64 })).toBe(KILL);
  });
});
