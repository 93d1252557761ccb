import { MagikError } from "@magikrun/spec/errors";
import type { SeccompArg } from "@magikrun/spec/runtime-config";
import type { BpfBuilder } from "./bpf.ts";

/** seccomp_data: nr at 0, arch at 4, instruction pointer at 8, then six 64-bit arguments. */
export const OFFSET_NR = 0;
export const OFFSET_ARCH = 4;
const argLow = (index: number) => 16 + 8 * index; // little-endian hosts: low half first
const argHigh = (index: number) => argLow(index) + 4;

const U64_MAX = (1n << 64n) - 1n;

function halves(value: number, field: string): { hi: number; lo: number } {
  if (!Number.isInteger(value) || value < 0 || BigInt(value) > U64_MAX) {
    throw new MagikError("InvalidInput", `${field} = ${value} is not an unsigned 64-bit integer`, {
      details: { field, value },
      hint: "JSON numbers above 2^53 lose precision; 2^64-1 cannot be written exactly. Use a smaller mask.",
    });
  }
  const big = BigInt(value);
  return { hi: Number(big >> 32n), lo: Number(big & 0xffff_ffffn) };
}

/**
 * Emits one comparison of a 64-bit argument as two 32-bit halves (the high half decides unless equal).
 * Control continues after the code when the comparison holds and goes to `fail` when it does not.
 */
export function emitArgCheck(b: BpfBuilder, arg: SeccompArg, fail: string, field: string): void {
  const pass = b.label("pass");
  const lo = b.label("lo");
  const v = halves(arg.value, `${field}.value`);
  const index = arg.index;
  switch (arg.op) {
    case "SCMP_CMP_EQ":
      b.ld(argHigh(index));
      b.jmp("jeq", v.hi, lo, fail);
      b.place(lo);
      b.ld(argLow(index));
      b.jmp("jeq", v.lo, pass, fail);
      break;
    case "SCMP_CMP_NE":
      b.ld(argHigh(index));
      b.jmp("jeq", v.hi, lo, pass);
      b.place(lo);
      b.ld(argLow(index));
      b.jmp("jeq", v.lo, fail, pass);
      break;
    case "SCMP_CMP_GT":
    case "SCMP_CMP_GE": {
      const eqHi = b.label("eqhi");
      b.ld(argHigh(index));
      b.jmp("jgt", v.hi, pass, eqHi);
      b.place(eqHi);
      b.jmp("jeq", v.hi, lo, fail);
      b.place(lo);
      b.ld(argLow(index));
      b.jmp(arg.op === "SCMP_CMP_GT" ? "jgt" : "jge", v.lo, pass, fail);
      break;
    }
    case "SCMP_CMP_LT":
    case "SCMP_CMP_LE": {
      // arg < v is !(arg >= v); arg <= v is !(arg > v).
      const eqHi = b.label("eqhi");
      b.ld(argHigh(index));
      b.jmp("jgt", v.hi, fail, eqHi);
      b.place(eqHi);
      b.jmp("jeq", v.hi, lo, pass);
      b.place(lo);
      b.ld(argLow(index));
      b.jmp(arg.op === "SCMP_CMP_LT" ? "jge" : "jgt", v.lo, fail, pass);
      break;
    }
    case "SCMP_CMP_MASKED_EQ": {
      // OCI: `value` is the mask, `valueTwo` the datum the masked argument must equal.
      const want = halves(arg.valueTwo ?? 0, `${field}.valueTwo`);
      b.ld(argHigh(index));
      b.and(v.hi);
      b.jmp("jeq", want.hi, lo, fail);
      b.place(lo);
      b.ld(argLow(index));
      b.and(v.lo);
      b.jmp("jeq", want.lo, pass, fail);
      break;
    }
  }
  b.place(pass);
}
