import { decode } from "./bpf.ts";

/** What the kernel hands a seccomp filter. */
export interface SeccompData {
  nr: number;
  arch: number;
  args?: bigint[];
}

/**
 * Runs a seccomp BPF program the way the kernel would, for tests: only the instructions the compiler emits.
 * Throws on anything the kernel's checker would refuse (backward or out-of-range jumps, falling off the end).
 */
export function runSeccompBpf(program: Uint8Array, data: SeccompData): number {
  const insns = decode(program);
  const bytes = new DataView(new ArrayBuffer(64));
  bytes.setUint32(0, data.nr >>> 0, true);
  bytes.setUint32(4, data.arch >>> 0, true);
  for (const [i, arg] of (data.args ?? []).entries())
    bytes.setBigUint64(16 + 8 * i, BigInt.asUintN(64, arg), true);
  let a = 0;
  for (let pc = 0; pc < insns.length; ) {
    const { code, jt, jf, k } = insns[pc]!;
    const next = pc + 1;
    switch (code) {
      case 0x20:
        if (k % 4 !== 0 || k > 60) throw new Error(`bad load offset ${k}`);
        a = bytes.getUint32(k, true);
        pc = next;
        break;
      case 0x54:
        a = (a & k) >>> 0;
        pc = next;
        break;
      case 0x05:
        pc = next + k;
        break;
      case 0x15:
        pc = next + (a === k ? jt : jf);
        break;
      case 0x25:
        pc = next + (a > k ? jt : jf);
        break;
      case 0x35:
        pc = next + (a >= k ? jt : jf);
        break;
      case 0x45:
        pc = next + ((a & k) !== 0 ? jt : jf);
        break;
      case 0x06:
        return k;
      default:
        throw new Error(`unexpected BPF opcode 0x${code.toString(16)} at ${pc}`);
    }
    if (pc >= insns.length) throw new Error("jump past the end of the program");
  }
  throw new Error("program ended without a return");
}
