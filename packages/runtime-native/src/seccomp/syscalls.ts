import { abi, type NativeArch } from "./arch.ts";

/** The native syscall number of `name` on an architecture, or undefined when the kernel has no such call. */
export function syscallNumber(arch: NativeArch, name: string): number | undefined {
  return abi(arch === "x86_64" ? "SCMP_ARCH_X86_64" : "SCMP_ARCH_AARCH64").table.get(name);
}
