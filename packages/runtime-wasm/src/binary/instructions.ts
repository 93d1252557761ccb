import { MagikError } from "@magikrun/spec";
import { type ByteReader, malformed } from "./bytes.ts";

/** What the rewriter needs to know about one instruction; everything else is copied byte for byte. */
export const InstrKind = {
  Plain: 0,
  /** block, if: opens a frame that is not a back-edge target. */
  Block: 1,
  /** loop: opens a frame whose header is a fuel check point. */
  Loop: 2,
  End: 3,
  /** call, return_call, ref.func: carry a function index that moves when an import is added. */
  FuncRef: 4,
} as const;
export type InstrKind = (typeof InstrKind)[keyof typeof InstrKind];

export interface Instr {
  kind: InstrKind;
  /** The opcode byte (the prefix byte for prefixed instructions). */
  op: number;
  /** For br, br_if, br_table: the outermost label any of its targets names (0 = innermost). */
  maxLabel: number;
  /** For FuncRef: the index and where its LEB starts (the opcode bytes before it are copied as they are). */
  funcIndex: number;
  indexStart: number;
}

export function newInstr(): Instr {
  return { kind: InstrKind.Plain, op: 0, maxLabel: 0, funcIndex: 0, indexStart: 0 };
}

const SINGLE_BYTE_TYPES = new Set([0x40, 0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f]);

function unsupported(what: string, offset: number): MagikError {
  return new MagikError("NotSupported", `wasm feature not supported: ${what} at byte ${offset}`, {
    details: { feature: what, offset },
    hint: "Supported: MVP, bulk memory, reference types, SIMD, threads, tail calls, multi-memory.",
  });
}

function blockType(r: ByteReader): void {
  if (SINGLE_BYTE_TYPES.has(r.peek())) r.u8();
  else if (r.sleb(33) < 0) throw unsupported("block type", r.offset);
}

function memarg(r: ByteReader): void {
  const align = r.u32();
  if (align & 0x40) r.u32(); // multi-memory: memory index follows the alignment
  r.skipLeb();
}

/** Reads one instruction, leaving `r` after its immediates. */
export function readInstruction(r: ByteReader, out: Instr): void {
  const at = r.offset;
  const op = r.u8();
  out.kind = InstrKind.Plain;
  out.op = op;
  if (op >= 0x45 && op <= 0xc4) return; // numeric and sign-extension operators have no immediates
  if (op >= 0x28 && op <= 0x3e) {
    memarg(r);
    return;
  }
  switch (op) {
    case 0x00:
    case 0x01:
    case 0x05:
    case 0x0f:
    case 0x1a:
    case 0x1b:
    case 0xd1:
      return;
    case 0x02:
    case 0x04:
      out.kind = InstrKind.Block;
      blockType(r);
      return;
    case 0x03:
      out.kind = InstrKind.Loop;
      blockType(r);
      return;
    case 0x0b:
      out.kind = InstrKind.End;
      return;
    case 0x0c:
    case 0x0d:
      out.maxLabel = r.u32();
      return;
    case 0x20:
    case 0x21:
    case 0x22:
    case 0x23:
    case 0x24:
    case 0x25:
    case 0x26:
    case 0x3f:
    case 0x40:
      r.u32();
      return;
    case 0x0e: {
      const n = r.u32();
      out.maxLabel = 0;
      for (let i = 0; i <= n; i++) out.maxLabel = Math.max(out.maxLabel, r.u32());
      return;
    }
    case 0x10:
    case 0x12:
    case 0xd2:
      out.kind = InstrKind.FuncRef;
      out.indexStart = r.offset;
      out.funcIndex = r.u32();
      return;
    case 0x11:
    case 0x13:
      r.u32();
      r.u32();
      return;
    case 0x1c: {
      const n = r.u32();
      for (let i = 0; i < n; i++) if (!SINGLE_BYTE_TYPES.has(r.u8())) throw unsupported("select type", at);
      return;
    }
    case 0x41:
      r.sleb(32);
      return;
    case 0x42:
      r.skipLeb();
      return;
    case 0x43:
      r.skip(4);
      return;
    case 0x44:
      r.skip(8);
      return;
    case 0xd0:
      if (!SINGLE_BYTE_TYPES.has(r.u8())) throw unsupported("heap type", at);
      return;
    case 0xfc:
      miscPrefix(r, at);
      return;
    case 0xfd:
      simdPrefix(r);
      return;
    case 0xfe:
      atomicPrefix(r);
      return;
    case 0x06:
    case 0x07:
    case 0x08:
    case 0x09:
    case 0x0a:
    case 0x18:
    case 0x19:
    case 0x1f:
      // A guest that can catch host exceptions could swallow a fuel or kill interrupt.
      throw unsupported("exception handling", at);
    default:
      throw unsupported(`opcode 0x${op.toString(16)}`, at);
  }
}

function miscPrefix(r: ByteReader, at: number): void {
  const sub = r.u32();
  if (sub <= 7) return;
  switch (sub) {
    case 8: // memory.init data mem
    case 10: // memory.copy dst src
    case 12: // table.init elem table
    case 14: // table.copy dst src
      r.u32();
      r.u32();
      return;
    case 9:
    case 11:
    case 13:
    case 15:
    case 16:
    case 17:
      r.u32();
      return;
    default:
      throw unsupported(`opcode 0xfc ${sub}`, at);
  }
}

function simdPrefix(r: ByteReader): void {
  const sub = r.u32();
  if (sub <= 11 || sub === 92 || sub === 93) {
    memarg(r);
    return;
  }
  if (sub === 12 || sub === 13) r.skip(16);
  else if (sub >= 21 && sub <= 34) r.skip(1);
  else if (sub >= 84 && sub <= 91) {
    memarg(r);
    r.skip(1);
  }
}

function atomicPrefix(r: ByteReader): void {
  const sub = r.u32();
  if (sub === 3) r.skip(1);
  else memarg(r);
}

/** Copies a constant expression up to and including its `end`, for sections that embed them. */
export function readConstExprEnd(r: ByteReader, onFuncRef?: (instr: Instr, start: number) => void): void {
  const instr = newInstr();
  for (;;) {
    const start = r.offset;
    readInstruction(r, instr);
    if (instr.kind === InstrKind.FuncRef) onFuncRef?.(instr, start);
    if (instr.kind === InstrKind.End) return;
    if (r.done) throw malformed("constant expression without end", r.offset);
  }
}
