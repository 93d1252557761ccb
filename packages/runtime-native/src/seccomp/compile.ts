import { MagikError } from "@magikrun/spec/errors";
import type { Seccomp, SeccompArg } from "@magikrun/spec/runtime-config";
import { actionValue, filterFlags, SECCOMP_RET } from "./actions.ts";
import { AUDIT_ARCH, type NativeArch, type SyscallAbi, selectAbis, X32_SYSCALL_BIT } from "./arch.ts";
import { emitArgCheck, OFFSET_ARCH, OFFSET_NR } from "./args.ts";
import { assemble, BpfBuilder } from "./bpf.ts";

export interface CompiledSeccomp {
  /** `struct sock_filter` entries, 8 bytes each, for seccomp(SECCOMP_SET_MODE_FILTER). */
  program: Uint8Array;
  /** SECCOMP_FILTER_FLAG_* bits from `flags`, for the same call. */
  flags: number;
  /** What was accepted but not enforced (unknown syscall names, foreign architectures, ignored flags). */
  warnings: string[];
}

/** A rule entry ready to emit: its return value and alternatives (ORed), each a list of ANDed conditions. */
interface Rule {
  ret: number;
  names: readonly string[];
  alternatives: SeccompArg[][];
  field: string;
}

/**
 * runc's rule: conditions on distinct arguments are ANDed, but when one argument is compared more than once
 * each condition becomes a rule of its own (ORed) — profiles written for Docker rely on it.
 */
function alternativesOf(args: readonly SeccompArg[]): SeccompArg[][] {
  if (args.length === 0) return [[]];
  const indexes = args.map((a) => a.index);
  const repeated = new Set(indexes).size !== indexes.length;
  return repeated ? args.map((a) => [a]) : [[...args]];
}

/** How a section treats syscalls newer than every syscall the profile names (see enosysAbove). */
interface Section {
  rules: readonly Rule[];
  defaultRet: number;
  /** Names in the profile, for the ENOSYS cut-off; undefined when there is none. */
  enosysNames?: readonly string[];
}

function emitAbi(b: BpfBuilder, abi: SyscallAbi, { rules, defaultRet, enosysNames }: Section): void {
  const newest = Math.max(-1, ...(enosysNames ?? []).map((n) => abi.table.get(n) ?? -1));
  if (enosysNames !== undefined && newest >= 0) {
    const enosys = b.label("enosys");
    const known = b.label("known");
    b.jmp("jgt", newest, enosys, known);
    b.place(enosys);
    b.ret(SECCOMP_RET.ERRNO | ENOSYS);
    b.place(known);
  }
  const bySyscall = new Map<number, Rule[]>();
  for (const rule of rules) {
    for (const name of new Set(rule.names)) {
      const nr = abi.table.get(name);
      if (nr === undefined) continue;
      const list = bySyscall.get(nr) ?? [];
      if (!list.includes(rule)) list.push(rule);
      bySyscall.set(nr, list);
    }
  }
  for (const [nr, list] of bySyscall) {
    const body = b.label("sys");
    const next = b.label("next");
    b.jmp("jeq", nr, body, next);
    b.place(body);
    let settled = false;
    // First matching entry wins, in config order.
    for (const rule of list) {
      for (const conditions of rule.alternatives) {
        if (conditions.length === 0) {
          b.ret(rule.ret);
          settled = true;
          break;
        }
        const fail = b.label("fail");
        for (const [i, arg] of conditions.entries()) emitArgCheck(b, arg, fail, `${rule.field}.args[${i}]`);
        b.ret(rule.ret);
        b.place(fail);
      }
      if (settled) break;
    }
    if (!settled) b.ret(defaultRet);
    b.place(next);
  }
  b.ret(defaultRet);
}

const ENOSYS = 38;

/**
 * runc's -ENOSYS rule: with a restrictive default, syscalls numbered above every syscall the profile names are
 * assumed newer than the profile and get ENOSYS, so that libc falls back to older calls (clone3 → clone)
 * instead of failing with EPERM. runc does this only for explicitly listed architectures; here it applies to
 * every filtered ABI, the native one included.
 */
function enosysAbove(seccomp: Seccomp): boolean {
  if (["SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_TRACE"].includes(seccomp.defaultAction)) return false;
  return seccomp.defaultErrnoRet !== ENOSYS;
}

/**
 * Compiles an OCI `linux.seccomp` section into a classic BPF program for one host architecture, as libseccomp
 * would for runc: the architecture is checked first (unknown ones are killed), x32 syscalls on x86-64 are told
 * apart by __X32_SYSCALL_BIT, and syscalls no rule matches get the default action.
 */
export function compileSeccompFilter(seccomp: Seccomp, target: ArchName): CompiledSeccomp {
  const arch = toNativeArch(target);
  const warnings: string[] = [];
  const defaultRet = actionValue(
    seccomp.defaultAction,
    seccomp.defaultErrnoRet,
    "linux.seccomp.defaultAction",
  );
  const abis = selectAbis(arch, seccomp.architectures, warnings);
  const flags = filterFlags(seccomp.flags, warnings);
  if (seccomp.listenerPath !== undefined && seccomp.listenerPath !== "") {
    warnings.push("linux.seccomp.listenerPath is ignored: magikrun does not support SCMP_ACT_NOTIFY");
  }

  const rules: Rule[] = [];
  for (const [i, entry] of (seccomp.syscalls ?? []).entries()) {
    const field = `linux.seccomp.syscalls[${i}]`;
    const ret = actionValue(entry.action, entry.errnoRet, field);
    // Like runc: a rule with the default's own action changes nothing.
    if (ret === defaultRet) continue;
    rules.push({ ret, names: entry.names, alternatives: alternativesOf(entry.args ?? []), field });
  }
  const unknown = new Set<string>();
  for (const entry of seccomp.syscalls ?? []) {
    for (const name of entry.names) if (!abis.some((a) => a.table.has(name))) unknown.add(name);
  }
  if (unknown.size > 0) {
    warnings.push(`seccomp: syscalls unknown on ${arch} are ignored: ${[...unknown].sort().join(", ")}`);
  }

  const section: Section = { rules, defaultRet };
  if (enosysAbove(seccomp)) section.enosysNames = (seccomp.syscalls ?? []).flatMap((e) => e.names);

  const b = new BpfBuilder();
  const badArch = b.label("badarch");
  b.ld(OFFSET_ARCH);
  for (const auditArch of new Set(abis.map((a) => a.auditArch))) {
    const body = b.label("arch");
    const nextArch = b.label("nextarch");
    b.jmp("jeq", auditArch, body, nextArch);
    b.place(body);
    b.ld(OFFSET_NR);
    if (auditArch === AUDIT_ARCH.X86_64) {
      const x32 = abis.find((a) => a.name === "SCMP_ARCH_X32");
      const x64 = abis.find((a) => a.name === "SCMP_ARCH_X86_64")!;
      const x32Body = b.label("x32");
      const x64Body = b.label("x64");
      b.jmp("jge", X32_SYSCALL_BIT, x32 ? x32Body : badArch, x64Body);
      b.place(x64Body);
      emitAbi(b, x64, section);
      if (x32) {
        b.place(x32Body);
        emitAbi(b, x32, section);
      }
    } else {
      emitAbi(b, abis.find((a) => a.auditArch === auditArch)!, section);
    }
    b.place(nextArch);
  }
  // libseccomp's default bad-architecture action.
  b.place(badArch);
  b.ret(SECCOMP_RET.KILL_THREAD);
  return { program: assemble(b), flags, warnings };
}

/** The BPF program alone; see compileSeccompFilter for flags and warnings. */
/**
 * The BPF program alone; see compileSeccompFilter for the flags. Warnings go to `onWarning`, by default to
 * stderr, as runc logs them.
 */
export function compileSeccomp(
  seccomp: Seccomp,
  arch: ArchName,
  onWarning: (message: string) => void = (m) => console.warn(`magikrun: warning: ${m}`),
): Uint8Array {
  const { program, warnings } = compileSeccompFilter(seccomp, arch);
  for (const warning of warnings) onWarning(warning);
  return program;
}

/** A host architecture, by its kernel name or its libseccomp name. */
export type ArchName = NativeArch | "SCMP_ARCH_X86_64" | "SCMP_ARCH_AARCH64";

function toNativeArch(name: string): NativeArch {
  if (name === "x86_64" || name === "SCMP_ARCH_X86_64") return "x86_64";
  if (name === "aarch64" || name === "SCMP_ARCH_AARCH64") return "aarch64";
  throw new MagikError(
    "NotSupported",
    `seccomp filters cannot be built for architecture ${JSON.stringify(name)}`,
    {
      details: { arch: name },
      hint: "magikrun compiles seccomp filters for x86_64 and aarch64 hosts.",
    },
  );
}

/** The architecture of the running process, for compileSeccomp. */
export function nativeArch(): NativeArch {
  if (process.arch === "x64") return "x86_64";
  if (process.arch === "arm64") return "aarch64";
  throw new MagikError("NotSupported", `seccomp filters are not built for ${process.arch} hosts`, {
    details: { arch: process.arch },
    hint: "magikrun compiles seccomp filters for x86_64 and aarch64 hosts.",
  });
}
