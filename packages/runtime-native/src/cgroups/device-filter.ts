import type { DeviceCgroupRule } from "@magikrun/spec/runtime-config";

/**
 * cgroup v2 has no devices files: access is decided by a BPF_PROG_TYPE_CGROUP_DEVICE program. The OCI rules
 * are written for v1, so they are first replayed on a model of the v1 devices controller, then the outcome is
 * compiled to eBPF.
 */

const TYPE_BITS = { b: 1, c: 2 } as const; // BPF_DEVCG_DEV_BLOCK, BPF_DEVCG_DEV_CHAR
const ACCESS_BITS = { m: 1, r: 2, w: 4 } as const; // BPF_DEVCG_ACC_MKNOD, _READ, _WRITE
const ANY = -1;

export interface DeviceException {
  type: "b" | "c";
  major: number;
  minor: number;
  access: number;
}

/** v1 semantics: a default (allow or deny) plus exceptions to it. */
export interface DeviceAccessModel {
  defaultAllow: boolean;
  exceptions: DeviceException[];
}

function accessBits(access: string | undefined): number {
  const text = access === undefined || access === "" ? "rwm" : access;
  let bits = 0;
  for (const ch of text) bits |= ACCESS_BITS[ch as keyof typeof ACCESS_BITS] ?? 0;
  return bits;
}

const number = (n: number | null | undefined) => (n === undefined || n === null || n < 0 ? ANY : n);

/**
 * Replays rules the way the v1 controller applies writes to devices.allow/deny: a rule of type "a" resets the
 * default and drops the exceptions; other rules add an exception when they differ from the default, or take
 * access away from an identical exception when they agree with it. A new cgroup starts allowing everything.
 */
export function deviceAccessModel(rules: readonly DeviceCgroupRule[]): DeviceAccessModel {
  const model: DeviceAccessModel = { defaultAllow: true, exceptions: [] };
  for (const rule of rules) {
    if (rule.type === undefined || rule.type === "a") {
      model.defaultAllow = rule.allow;
      model.exceptions = [];
      continue;
    }
    const ex: DeviceException = {
      type: rule.type,
      major: number(rule.major),
      minor: number(rule.minor),
      access: accessBits(rule.access),
    };
    const same = model.exceptions.find(
      (e) => e.type === ex.type && e.major === ex.major && e.minor === ex.minor,
    );
    if (rule.allow !== model.defaultAllow) {
      if (same) same.access |= ex.access;
      else model.exceptions.push(ex);
    } else if (same) {
      same.access &= ~ex.access;
      if (same.access === 0) model.exceptions.splice(model.exceptions.indexOf(same), 1);
    }
  }
  return model;
}

// eBPF encoding: u8 opcode, u8 dst_reg | src_reg << 4, s16 offset, s32 immediate.
const LDX_MEM_W = 0x61;
const ALU64_AND_K = 0x57;
const ALU64_RSH_K = 0x77;
const ALU64_MOV_K = 0xb7;
const ALU64_MOV_X = 0xbf;
const JMP_JNE_K = 0x55;
const JMP_JEQ_K = 0x15;
const JMP_JSET_K = 0x45;
const EXIT = 0x95;

type Ebpf = [op: number, dst: number, src: number, off: number, imm: number];

/**
 * The program for a model: r2 = device type, r3 = requested access, r4 = major, r5 = minor (from the context
 * struct bpf_cgroup_dev_ctx in r1). Returns 1 to allow, 0 to deny.
 */
export function deviceFilterProgram(model: DeviceAccessModel): Uint8Array {
  const code: Ebpf[] = [
    [LDX_MEM_W, 2, 1, 0, 0],
    [ALU64_AND_K, 2, 0, 0, 0xffff],
    [LDX_MEM_W, 3, 1, 0, 0],
    [ALU64_RSH_K, 3, 0, 0, 16],
    [LDX_MEM_W, 4, 1, 4, 0],
    [LDX_MEM_W, 5, 1, 8, 0],
  ];
  for (const ex of model.exceptions) {
    const block: Ebpf[] = [];
    block.push([JMP_JNE_K, 2, 0, 0, TYPE_BITS[ex.type]]);
    if (ex.major !== ANY) block.push([JMP_JNE_K, 4, 0, 0, ex.major]);
    if (ex.minor !== ANY) block.push([JMP_JNE_K, 5, 0, 0, ex.minor]);
    if (model.defaultAllow) {
      // A deny exception applies when any requested access is in it.
      block.push([ALU64_MOV_X, 6, 3, 0, 0], [ALU64_AND_K, 6, 0, 0, ex.access], [JMP_JEQ_K, 6, 0, 0, 0]);
    } else {
      // An allow exception applies only when it covers every requested access.
      block.push([JMP_JSET_K, 3, 0, 0, ~ex.access & 7]);
    }
    block.push([ALU64_MOV_K, 0, 0, 0, model.defaultAllow ? 0 : 1], [EXIT, 0, 0, 0, 0]);
    // A failed check skips the rest of the block; offsets count from the next instruction.
    for (const [i, insn] of block.entries()) {
      if (insn[0] === JMP_JNE_K || insn[0] === JMP_JEQ_K || insn[0] === JMP_JSET_K)
        insn[3] = block.length - i - 1;
    }
    code.push(...block);
  }
  code.push([ALU64_MOV_K, 0, 0, 0, model.defaultAllow ? 1 : 0], [EXIT, 0, 0, 0, 0]);
  const out = new Uint8Array(code.length * 8);
  const view = new DataView(out.buffer);
  for (const [i, [op, dst, src, off, imm]] of code.entries()) {
    view.setUint8(i * 8, op);
    view.setUint8(i * 8 + 1, (src << 4) | dst);
    view.setInt16(i * 8 + 2, off, true);
    view.setInt32(i * 8 + 4, imm | 0, true);
  }
  return out;
}
