import { MagikError } from "@magikrun/spec/errors";
import { AARCH64_SYSCALLS } from "./tables/aarch64.ts";
import { X32_SYSCALLS } from "./tables/x32.ts";
import { X86_SYSCALLS } from "./tables/x86.ts";
import { X86_64_SYSCALLS } from "./tables/x86_64.ts";

/** Host architectures the compiler targets. */
export type NativeArch = "x86_64" | "aarch64";

/** AUDIT_ARCH_* values, as the kernel puts them in seccomp_data.arch. */
export const AUDIT_ARCH = {
  X86_64: 0xc000_003e,
  I386: 0x4000_0003,
  AARCH64: 0xc000_00b7,
} as const;

/** x32 shares AUDIT_ARCH_X86_64 with x86-64; its syscall numbers carry this bit. */
export const X32_SYSCALL_BIT = 0x4000_0000;

export interface SyscallAbi {
  /** The SCMP_ARCH_* name. */
  name: string;
  auditArch: number;
  table: ReadonlyMap<string, number>;
}

function parseTable(text: string): ReadonlyMap<string, number> {
  const table = new Map<string, number>();
  for (const entry of text.split(/\s+/)) {
    const colon = entry.indexOf(":");
    if (colon > 0) table.set(entry.slice(0, colon), Number(entry.slice(colon + 1)));
  }
  return table;
}

const cache = new Map<string, ReadonlyMap<string, number>>();
function table(name: string, text: string): ReadonlyMap<string, number> {
  let t = cache.get(name);
  if (t === undefined) {
    t = parseTable(text);
    cache.set(name, t);
  }
  return t;
}

export function abi(
  name: "SCMP_ARCH_X86_64" | "SCMP_ARCH_X86" | "SCMP_ARCH_X32" | "SCMP_ARCH_AARCH64",
): SyscallAbi {
  switch (name) {
    case "SCMP_ARCH_X86_64":
      return { name, auditArch: AUDIT_ARCH.X86_64, table: table(name, X86_64_SYSCALLS) };
    case "SCMP_ARCH_X32":
      return { name, auditArch: AUDIT_ARCH.X86_64, table: table(name, X32_SYSCALLS) };
    case "SCMP_ARCH_X86":
      return { name, auditArch: AUDIT_ARCH.I386, table: table(name, X86_SYSCALLS) };
    case "SCMP_ARCH_AARCH64":
      return { name, auditArch: AUDIT_ARCH.AARCH64, table: table(name, AARCH64_SYSCALLS) };
  }
}

/** Every architecture name libseccomp knows; names outside this list are typos. */
const LIBSECCOMP_ARCHES = new Set(
  "X86 X86_64 X32 ARM AARCH64 MIPS MIPS64 MIPS64N32 MIPSEL MIPSEL64 MIPSEL64N32 PPC PPC64 PPC64LE S390 S390X PARISC PARISC64 RISCV64 LOONGARCH64 M68K SH SHEB"
    .split(" ")
    .map((a) => `SCMP_ARCH_${a}`),
);

/** The ABIs a process on this host can use, with the native one first. */
const RUNNABLE: Record<NativeArch, string[]> = {
  x86_64: ["SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_X86"],
  aarch64: ["SCMP_ARCH_AARCH64"],
};

/**
 * The ABIs to filter: the native one always (as libseccomp does), plus the listed ones this host can run.
 * A listed ABI the host cannot run is ignored with a warning; 32-bit ARM on arm64 is not supported yet, so its
 * syscalls meet the bad-architecture action.
 */
export function selectAbis(
  native: NativeArch,
  architectures: readonly string[] | undefined,
  warnings: string[],
): SyscallAbi[] {
  const wanted = new Set([RUNNABLE[native][0]!]);
  for (const name of architectures ?? []) {
    if (!LIBSECCOMP_ARCHES.has(name)) {
      throw new MagikError("InvalidInput", `unknown seccomp architecture ${JSON.stringify(name)}`, {
        details: { field: "linux.seccomp.architectures", value: name },
        hint: "Architectures are libseccomp names such as SCMP_ARCH_X86_64 or SCMP_ARCH_AARCH64.",
      });
    }
    if (RUNNABLE[native].includes(name)) wanted.add(name);
    else
      warnings.push(
        `seccomp architecture ${name} cannot run on ${native} or is not supported; its syscalls are killed`,
      );
  }
  return RUNNABLE[native].filter((n) => wanted.has(n)).map((n) => abi(n as Parameters<typeof abi>[0]));
}
