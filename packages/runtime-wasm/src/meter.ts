import { MagikError } from "@magikrun/spec";
import { ByteReader, ByteWriter, malformed } from "./binary/bytes.ts";
import { InstrKind, newInstr, readInstruction } from "./binary/instructions.ts";

/** What the code rewrite needs from the rest of the module. */
export interface CodeRewrite {
  /** Global holding the fuel left in the current slice. */
  fuelGlobal: number;
  /** The imported `refuel(current) -> new` function. */
  refuelFunc: number;
  /** Parameter count of each defined function, in order: the added local's index comes after them. */
  paramCounts: number[];
  remap(funcIndex: number): number;
}

interface Counting extends CodeRewrite {
  checkPoints: number;
}

const SINGLE_BYTE_VALTYPES = new Set([0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f]);
const I64 = 0x7e;
const Op = {
  Return: 0x0f,
  Br: 0x0c,
  BrIf: 0x0d,
  BrTable: 0x0e,
  Call: 0x10,
  CallIndirect: 0x11,
  ReturnCall: 0x12,
  ReturnCallIndirect: 0x13,
  LocalGet: 0x20,
  LocalSet: 0x21,
  LocalTee: 0x22,
  GlobalGet: 0x23,
  GlobalSet: 0x24,
  I64Const: 0x42,
  I64LtS: 0x53,
  I64Sub: 0x7d,
  If: 0x04,
  Void: 0x40,
  End: 0x0b,
} as const;

/** Rewrites a code section; returns it with the number of check points inserted. */
export function rewriteCode(
  payload: Uint8Array,
  sectionOffset: number,
  context: CodeRewrite,
): { payload: Uint8Array; checkPoints: number } {
  const rw: Counting = { ...context, checkPoints: 0 };
  const r = new ByteReader(payload);
  const count = r.u32();
  if (count !== rw.paramCounts.length) {
    throw malformed("code and function sections disagree on the function count", sectionOffset);
  }
  const w = new ByteWriter().u32(count);
  for (let i = 0; i < count; i++) {
    const size = r.u32();
    const end = r.offset + size;
    if (end > payload.length)
      throw malformed("function body past the code section", sectionOffset + r.offset);
    w.framed(rewriteBody(new ByteReader(payload, r.offset, end), rw, rw.paramCounts[i]!, sectionOffset));
    r.offset = end;
  }
  return { payload: w.toBytes(), checkPoints: rw.checkPoints };
}

/**
 * Functions without loops charge the global counter at entry and check it there: they are bounded by their
 * size, their calls are checked by their callees. Functions with loops keep the counter in a local, where the
 * engine can hold it in a register across iterations: it is loaded from the global at entry, and written back
 * to it around every call and before every way out, so that the global is exact whenever other code runs.
 */
function rewriteBody(r: ByteReader, rw: Counting, params: number, sectionOffset: number): Uint8Array {
  const groups = r.u32();
  const localGroups = new ByteWriter();
  let locals = 0;
  for (let g = 0; g < groups; g++) {
    const n = r.u32();
    const type = r.u8();
    if (!SINGLE_BYTE_VALTYPES.has(type)) {
      throw new MagikError("NotSupported", "only plain value types are supported in locals (no GC types)", {
        details: { offset: sectionOffset + r.offset },
      });
    }
    localGroups.u32(n).u8(type);
    locals += n;
  }
  const codeStart = r.offset;
  const costs = staticCosts(r, sectionOffset);
  const w = new ByteWriter();
  const cached = costs.length > 1;
  if (!cached) {
    w.u32(groups).bytes(localGroups.toBytes());
    emitGlobalCheck(w, rw, costs[0]!);
  } else {
    w.u32(groups + 1)
      .bytes(localGroups.toBytes())
      .u32(1)
      .u8(I64);
  }
  const fuel = params + locals;
  const g = rw.fuelGlobal;
  const sync = () => w.u8(Op.LocalGet).u32(fuel).u8(Op.GlobalSet).u32(g);
  const reload = () => w.u8(Op.GlobalGet).u32(g).u8(Op.LocalSet).u32(fuel);
  let nextCheck = 0;
  if (cached) {
    w.u8(Op.GlobalGet).u32(g);
    emitLocalCheck(w, rw, fuel, costs[nextCheck++]!);
  }
  const instr = newInstr();
  let depth = 0;
  r.offset = codeStart;
  while (!r.done) {
    const start = r.offset;
    readInstruction(r, instr);
    if (cached) {
      const op = instr.op;
      const leaves =
        op === Op.Return ||
        op === Op.ReturnCall ||
        op === Op.ReturnCallIndirect ||
        ((op === Op.Br || op === Op.BrIf || op === Op.BrTable) && instr.maxLabel >= depth) ||
        (instr.kind === InstrKind.End && depth === 0);
      if (leaves || op === Op.Call || op === Op.CallIndirect) sync();
    }
    if (instr.kind === InstrKind.FuncRef) {
      w.bytes(r.bytes.subarray(start, instr.indexStart)).u32(rw.remap(instr.funcIndex));
    } else {
      w.bytes(r.bytes.subarray(start, r.offset));
    }
    if (instr.kind === InstrKind.Block) depth++;
    else if (instr.kind === InstrKind.Loop) {
      depth++;
      if (cached) {
        w.u8(Op.LocalGet).u32(fuel);
        emitLocalCheck(w, rw, fuel, costs[nextCheck++]!);
      }
    } else if (instr.kind === InstrKind.End) depth--;
    if (cached && (instr.op === Op.Call || instr.op === Op.CallIndirect)) reload();
  }
  return w.toBytes();
}

/** Cost per check point, in code order: [function entry, first loop, second loop, ...]. */
function staticCosts(r: ByteReader, sectionOffset: number): number[] {
  const costs = [0];
  const frames = [0];
  const instr = newInstr();
  while (!r.done) {
    readInstruction(r, instr);
    const owner = frames[frames.length - 1];
    if (owner === undefined) throw malformed("code after the function's end", sectionOffset + r.offset);
    costs[owner]! += 1;
    if (instr.kind === InstrKind.Block) frames.push(owner);
    else if (instr.kind === InstrKind.Loop) frames.push(costs.push(0) - 1);
    else if (instr.kind === InstrKind.End) frames.pop();
  }
  if (frames.length !== 0) throw malformed("function body without end", sectionOffset + r.offset);
  return costs;
}

/** global -= cost; if (global < 0) global = refuel(global) */
function emitGlobalCheck(w: ByteWriter, rw: Counting, cost: number): void {
  rw.checkPoints++;
  const g = rw.fuelGlobal;
  w.u8(Op.GlobalGet).u32(g).u8(Op.I64Const).sleb(cost).u8(Op.I64Sub).u8(Op.GlobalSet).u32(g);
  w.u8(Op.GlobalGet).u32(g).u8(Op.I64Const).u8(0x00).u8(Op.I64LtS).u8(Op.If).u8(Op.Void);
  w.u8(Op.GlobalGet).u32(g).u8(Op.Call).u32(rw.refuelFunc).u8(Op.GlobalSet).u32(g);
  w.u8(Op.End);
}

/** With the counter on the stack: local = counter - cost; if (local < 0) local = refuel(local) */
function emitLocalCheck(w: ByteWriter, rw: Counting, local: number, cost: number): void {
  rw.checkPoints++;
  w.u8(Op.I64Const).sleb(cost).u8(Op.I64Sub).u8(Op.LocalTee).u32(local);
  w.u8(Op.I64Const).u8(0x00).u8(Op.I64LtS).u8(Op.If).u8(Op.Void);
  w.u8(Op.LocalGet).u32(local).u8(Op.Call).u32(rw.refuelFunc).u8(Op.LocalSet).u32(local);
  w.u8(Op.End);
}
