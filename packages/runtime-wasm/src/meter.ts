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
  I64Add: 0x7c,
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
  // Open frames of the original code, innermost last: wrapped loops with what their header charges, else
  // undefined.
  const frames: (WrappedLoop | undefined)[] = [];
  /**
   * A label of the original code, renumbered past the frames the rewrite adds: three per crossed wrapped loop,
   * four inside the first copy of an unrolled one (its `block $next` too).
   */
  const relabel = (label: number): number => {
    let added = 0;
    for (let i = Math.max(frames.length - label, 0); i < frames.length; i++) {
      const frame = frames[i];
      if (frame !== undefined) added += frame.copiesLeft > 0 ? 4 : 3;
    }
    return label + added;
  };
  // Unchanged instructions are copied in runs, up to the next place where something is inserted or rewritten.
  let copied = codeStart;
  const flush = (to: number) => {
    if (to > copied) w.bytes(r.bytes.subarray(copied, to));
    copied = to;
  };
  r.offset = codeStart;
  while (!r.done) {
    const start = r.offset;
    readInstruction(r, instr);
    const op = instr.op;
    if (cached) {
      const depth = frames.length;
      const leaves =
        op === Op.Return ||
        op === Op.ReturnCall ||
        op === Op.ReturnCallIndirect ||
        ((op === Op.Br || op === Op.BrIf || op === Op.BrTable) && instr.maxLabel >= depth) ||
        (instr.kind === InstrKind.End && depth === 0);
      if (leaves || op === Op.Call || op === Op.CallIndirect) {
        flush(start);
        sync();
      }
    }
    if (instr.kind === InstrKind.FuncRef) {
      flush(instr.indexStart);
      w.u32(rw.remap(instr.funcIndex));
      copied = r.offset;
    } else if (cached && (op === Op.Br || op === Op.BrIf || op === Op.BrTable)) {
      flush(start);
      const labels = new ByteReader(r.bytes, start + 1, r.offset);
      w.u8(op);
      if (op === Op.BrTable) {
        const n = labels.u32();
        w.u32(n);
        for (let i = 0; i <= n; i++) w.u32(relabel(labels.u32()));
      } else {
        w.u32(relabel(labels.u32()));
      }
      copied = r.offset;
    } else if (instr.kind === InstrKind.Loop && cached) {
      flush(start);
      const blockType = r.bytes.subarray(start + 1, r.offset);
      const wrapped = blockType.length === 1;
      const copies = blockType[0] === Op.Void ? unrollCopies(r) : 1;
      if (wrapped) w.u8(0x02).bytes(blockType).u8(0x03).u8(Op.Void).u8(0x02).u8(Op.Void);
      flush(r.offset);
      const cost = costs[nextCheck++]! * copies;
      frames.push(wrapped ? { charge: cost, copiesLeft: copies - 1, bodyStart: r.offset } : undefined);
      w.u8(Op.LocalGet).u32(fuel);
      if (wrapped) emitLoopHeaderCharge(w, rw, fuel, cost);
      else emitLocalCheck(w, rw, fuel, cost);
      if (copies > 1) w.u8(0x02).u8(Op.Void); // block $next: the first copy's `continue`
      continue;
    }
    if (instr.kind === InstrKind.Block || instr.kind === InstrKind.Loop) frames.push(undefined);
    else if (instr.kind === InstrKind.End) {
      const frame = frames.pop();
      if (frame !== undefined && frame.copiesLeft > 0) {
        // A copy but the last falls out of the loop as the original did: out through $exit (past $next, the
        // loop, $slow and $outer). Then the body again, as the next copy; the last one's `continue` is the loop's.
        flush(start);
        w.u8(Op.Br).u8(4).u8(Op.End);
        const copiesLeft = frame.copiesLeft - 1;
        frames.push({ ...frame, copiesLeft });
        if (copiesLeft > 0) w.u8(0x02).u8(Op.Void);
        r.offset = frame.bodyStart;
        copied = frame.bodyStart;
        continue;
      }
      if (frame !== undefined) {
        flush(r.offset);
        emitLoopTrailer(w, rw, fuel, frame.charge);
      }
    }
    if (cached && (op === Op.Call || op === Op.CallIndirect)) {
      flush(r.offset);
      reload();
    }
  }
  flush(r.offset);
  return w.toBytes();
}

interface WrappedLoop {
  /** What its header charges: the static cost of one iteration times the copies of its body. */
  charge: number;
  /** Copies of the body still to emit after the one being emitted (0 when not unrolled). */
  copiesLeft: number;
  /** Offset of the original body, for emitting it again. */
  bodyStart: number;
}

/** Copies of a qualifying loop's body by its size in instructions: [at most, copies], smallest first. */
const UNROLL: readonly (readonly [number, number])[] = [
  [16, 4],
  [32, 2],
];

/**
 * How many copies of a loop's body to emit: more than one for a small loop (the fuel check is a fair share of
 * each iteration) with no nested loop (it has its own check point) and no call (the counter is written back
 * around calls; a call also dwarfs the check). `r` is at the start of the loop's body; it is not moved.
 */
function unrollCopies(r: ByteReader): number {
  const scan = new ByteReader(r.bytes, r.offset, r.end);
  const instr = newInstr();
  let depth = 0;
  const max = UNROLL[UNROLL.length - 1]![0];
  for (let n = 1; n <= max && !scan.done; n++) {
    readInstruction(scan, instr);
    const op = instr.op;
    if (instr.kind === InstrKind.Loop) return 1;
    if (op === Op.Call || op === Op.CallIndirect || op === Op.ReturnCall || op === Op.ReturnCallIndirect)
      return 1;
    // Exception handling is refused elsewhere; never duplicate what this rewriter does not model.
    if ((op >= 0x06 && op <= 0x09) || op === 0x18 || op === 0x19 || op === 0x1f) return 1;
    if (instr.kind === InstrKind.Block) depth++;
    else if (instr.kind === InstrKind.End && depth-- === 0) return UNROLL.find(([most]) => n <= most)![1];
  }
  return 1;
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

/**
 * Loop headers of wrapped loops: `local = counter - cost; br_if $slow (local < 0)`. Nothing in the loop calls
 * out, which lets the engine keep the loop as tight as the original (a call inside it, even one never taken,
 * cost about a quarter more on CPU-bound code).
 */
function emitLoopHeaderCharge(w: ByteWriter, rw: Counting, local: number, cost: number): void {
  rw.checkPoints++;
  w.u8(Op.I64Const).sleb(cost).u8(Op.I64Sub).u8(Op.LocalTee).u32(local);
  w.u8(Op.I64Const).u8(0x00).u8(Op.I64LtS).u8(Op.BrIf).u8(1);
}

/**
 * Closes a wrapped loop. The original loop sits in `block $exit (bt) loop $outer block $slow loop (bt)`: falling
 * out of it leaves through $exit with its results; running out of fuel branches to $slow, which refuels and
 * re-enters the loop through $outer. The header charges the iteration again on re-entry, so the refuelled
 * counter gets that cost back first: charged once, and a slice smaller than the cost cannot livelock.
 */
function emitLoopTrailer(w: ByteWriter, rw: Counting, local: number, cost: number): void {
  w.u8(Op.Br).u8(2).u8(Op.End);
  w.u8(Op.LocalGet).u32(local).u8(Op.Call).u32(rw.refuelFunc);
  w.u8(Op.I64Const).sleb(cost).u8(Op.I64Add).u8(Op.LocalSet).u32(local);
  w.u8(Op.Br).u8(0).u8(Op.End);
  w.u8(0x00).u8(Op.End);
}

/** With the counter on the stack: local = counter - cost; if (local < 0) local = refuel(local) */
function emitLocalCheck(w: ByteWriter, rw: Counting, local: number, cost: number): void {
  rw.checkPoints++;
  w.u8(Op.I64Const).sleb(cost).u8(Op.I64Sub).u8(Op.LocalTee).u32(local);
  w.u8(Op.I64Const).u8(0x00).u8(Op.I64LtS).u8(Op.If).u8(Op.Void);
  w.u8(Op.LocalGet).u32(local).u8(Op.Call).u32(rw.refuelFunc).u8(Op.LocalSet).u32(local);
  w.u8(Op.End);
}
