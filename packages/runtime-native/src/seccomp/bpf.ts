import { MagikError } from "@magikrun/spec/errors";

/** Classic BPF as seccomp runs it: a tiny assembler with labels that keeps every jump within reach. */

export const BPF_MAXINSNS = 4096;

const LD_W_ABS = 0x20;
const ALU_AND_K = 0x54;
const JMP_JA = 0x05;
const JMP_K = { jeq: 0x15, jgt: 0x25, jge: 0x35, jset: 0x45 } as const;
const RET_K = 0x06;

export type JumpCondition = keyof typeof JMP_K;

export type Insn =
  | { op: "ld"; offset: number }
  | { op: "and"; k: number }
  | { op: "jmp"; cond: JumpCondition; k: number; jt: string; jf: string }
  | { op: "ja"; target: string }
  | { op: "ret"; k: number }
  | { op: "label"; name: string };

/** Builds a program; labels are unique names, created with `label()`. */
export class BpfBuilder {
  readonly code: Insn[] = [];
  #next = 0;

  label(hint = "L"): string {
    return `${hint}${this.#next++}`;
  }
  place(name: string): void {
    this.code.push({ op: "label", name });
  }
  ld(offset: number): void {
    this.code.push({ op: "ld", offset });
  }
  and(k: number): void {
    this.code.push({ op: "and", k: k >>> 0 });
  }
  jmp(cond: JumpCondition, k: number, jt: string, jf: string): void {
    this.code.push({ op: "jmp", cond, k: k >>> 0, jt, jf });
  }
  ja(target: string): void {
    this.code.push({ op: "ja", target });
  }
  ret(k: number): void {
    this.code.push({ op: "ret", k: k >>> 0 });
  }
}

function positions(code: Insn[]): { labels: Map<string, number>; index: number[] } {
  const labels = new Map<string, number>();
  const index: number[] = [];
  let pc = 0;
  for (const insn of code) {
    index.push(pc);
    if (insn.op === "label") labels.set(insn.name, pc);
    else pc++;
  }
  return { labels, index };
}

/**
 * Conditional jumps reach at most 255 instructions ahead; a farther target goes through an unconditional
 * jump (32-bit offset) placed right after the conditional. Repeats until every jump fits.
 */
function relax(code: Insn[]): Insn[] {
  let fresh = 0;
  for (;;) {
    const { labels, index } = positions(code);
    const out: Insn[] = [];
    let changed = false;
    for (const [i, insn] of code.entries()) {
      if (insn.op !== "jmp") {
        out.push(insn);
        continue;
      }
      const from = index[i]! + 1;
      const far = (target: string) => labels.get(target)! - from > 255;
      if (!far(insn.jt) && !far(insn.jf)) {
        out.push(insn);
        continue;
      }
      changed = true;
      const jt = far(insn.jt) ? `~t${fresh++}` : insn.jt;
      const jf = far(insn.jf) ? `~f${fresh++}` : insn.jf;
      out.push({ ...insn, jt, jf });
      if (jt !== insn.jt) out.push({ op: "label", name: jt }, { op: "ja", target: insn.jt });
      if (jf !== insn.jf) out.push({ op: "label", name: jf }, { op: "ja", target: insn.jf });
    }
    code = out;
    if (!changed) return code;
  }
}

/** Resolves labels and encodes `struct sock_filter` entries (u16 code, u8 jt, u8 jf, u32 k; little endian). */
export function assemble(builder: BpfBuilder): Uint8Array {
  const code = relax(builder.code);
  const { labels, index } = positions(code);
  const count = code.filter((i) => i.op !== "label").length;
  if (count > BPF_MAXINSNS) {
    throw new MagikError(
      "InvalidInput",
      `seccomp filter needs ${count} BPF instructions; the kernel allows 4096`,
      {
        details: { instructions: count, max: BPF_MAXINSNS },
        hint: "Merge rules (e.g. list several names in one entry) or use fewer argument conditions.",
      },
    );
  }
  const out = new Uint8Array(count * 8);
  const view = new DataView(out.buffer);
  const resolve = (name: string, from: number): number => {
    const target = labels.get(name);
    if (target === undefined || target < from) throw new Error(`internal: bad BPF label ${name}`);
    return target - from;
  };
  for (const [i, insn] of code.entries()) {
    if (insn.op === "label") continue;
    const pc = index[i]!;
    const at = pc * 8;
    let op: number;
    let jt = 0;
    let jf = 0;
    let k = 0;
    if (insn.op === "ld") [op, k] = [LD_W_ABS, insn.offset];
    else if (insn.op === "and") [op, k] = [ALU_AND_K, insn.k];
    else if (insn.op === "ret") [op, k] = [RET_K, insn.k];
    else if (insn.op === "ja") [op, k] = [JMP_JA, resolve(insn.target, pc + 1)];
    else [op, k, jt, jf] = [JMP_K[insn.cond], insn.k, resolve(insn.jt, pc + 1), resolve(insn.jf, pc + 1)];
    view.setUint16(at, op, true);
    view.setUint8(at + 2, jt);
    view.setUint8(at + 3, jf);
    view.setUint32(at + 4, k >>> 0, true);
  }
  return out;
}

export interface DecodedInsn {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

/** The inverse of assemble, for tests and debugging. */
export function decode(program: Uint8Array): DecodedInsn[] {
  const view = new DataView(program.buffer, program.byteOffset, program.byteLength);
  const out: DecodedInsn[] = [];
  for (let at = 0; at < program.byteLength; at += 8) {
    out.push({
      code: view.getUint16(at, true),
      jt: view.getUint8(at + 2),
      jf: view.getUint8(at + 3),
      k: view.getUint32(at + 4, true),
    });
  }
  return out;
}
