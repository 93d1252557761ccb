export { actionValue, filterFlags, SECCOMP_FILTER_FLAGS, SECCOMP_RET } from "./actions.ts";
export { AUDIT_ARCH, type NativeArch, X32_SYSCALL_BIT } from "./arch.ts";
export { BPF_MAXINSNS, decode as decodeBpf } from "./bpf.ts";
export {
  type ArchName,
  type CompiledSeccomp,
  compileSeccomp,
  compileSeccompFilter,
  nativeArch,
} from "./compile.ts";
export { syscallNumber } from "./syscalls.ts";
