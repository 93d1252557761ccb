import { existsSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { abi } from "./arch.ts";
import { syscallNumber } from "./syscalls.ts";

const HEADER_64 = "/usr/include/x86_64-linux-gnu/asm/unistd_64.h";

describe("syscall tables", () => {
  it.skipIf(!existsSync(HEADER_64))("x86-64 agrees with the installed kernel headers", () => {
    const header = readFileSync(HEADER_64, "utf8");
    const fromHeader = [...header.matchAll(/^#define __NR_(\w+) (\d+)$/gm)];
    expect(fromHeader.length).toBeGreaterThan(300);
    for (const [, name, nr] of fromHeader)
      expect([name, syscallNumber("x86_64", name!)]).toEqual([name, Number(nr)]);
  });

  it("knows syscalls newer than the headers, and arm64's generic numbers", () => {
    expect(syscallNumber("x86_64", "clone3")).toBe(435);
    expect(syscallNumber("x86_64", "listns")).toBe(470);
    expect(syscallNumber("x86_64", "uretprobe")).toBe(335);
    expect(syscallNumber("aarch64", "openat")).toBe(56);
    expect(syscallNumber("aarch64", "execve")).toBe(221);
    expect(syscallNumber("aarch64", "fstat")).toBe(80);
    expect(syscallNumber("aarch64", "mseal")).toBe(462);
    expect(syscallNumber("aarch64", "open")).toBeUndefined();
    expect(syscallNumber("aarch64", "syscalls")).toBeUndefined();
  });

  it("numbers are distinct within each ABI", () => {
    for (const name of ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64"] as const) {
      const table = abi(name).table;
      expect(table.size).toBeGreaterThan(300);
      expect(new Set(table.values()).size).toBe(table.size);
    }
    expect(abi("SCMP_ARCH_X32").table.get("execve")).toBe(0x4000_0000 + 520);
  });
});
