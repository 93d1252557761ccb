import { MagikError } from "@magikrun/spec";
import { ByteReader, ByteWriter, malformed } from "./binary/bytes.ts";
import { readConstExprEnd } from "./binary/instructions.ts";
import { capMemoryLimits, type MemoryType } from "./binary/memory-limits.ts";
import { encodeModule, insertSection, parseSections, type Section, SectionId } from "./binary/sections.ts";
import { rewriteCode } from "./meter.ts";
import { FUEL_EXPORT } from "./protocol.ts";

/** The host function metered code calls when its fuel slice runs out: (current fuel) -> new fuel. */
export const FUEL_IMPORT = { module: "magikrun", name: "refuel" } as const;

/** Bumped whenever the emitted code changes, so cached rewrites from an older version are not reused. */
export const INSTRUMENTER_VERSION = 3;

export interface InstrumentOptions {
  /** Upper bound written into every memory's maximum. */
  maxMemoryPages: number;
  /** Insert fuel checks (function entries and loop headers). Without it only the memory caps are applied. */
  meter: boolean;
}

export interface ImportedMemory {
  module: string;
  name: string;
  type: MemoryType;
}

export interface InstrumentedModule {
  bytes: Uint8Array;
  /** Memories the host must create and pass as imports, with their capped limits. */
  importedMemories: ImportedMemory[];
  /** Number of fuel check points inserted (function entries + loop headers). */
  checkPoints: number;
}

const REFUEL_TYPE = new Uint8Array([0x60, 0x01, 0x7e, 0x01, 0x7e]);
const SINGLE_BYTE_VALTYPES = new Set([0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f]);

interface Rewrite {
  meter: boolean;
  importedFuncs: number;
  fuelGlobal: number;
  refuelFunc: number;
  checkPoints: number;
}

/**
 * Rewrites a module so that it can be limited from outside: memories get a hard maximum and, when metering,
 * every function entry and loop header subtracts the static cost of the code it starts from a fuel global and
 * calls the host's `refuel` when the global goes negative. The host hands fuel out in slices, so the hot path is
 * one subtraction and one compare; the host call per slice is where fuel, kill and timeout are decided.
 *
 * The cost charged at a check point is the number of instructions that belong to it directly (nested loops
 * charge their own), so an iteration is charged as if no branch skipped anything: an upper bound, deterministic.
 * Adding the `refuel` import moves every defined function's index by one; all function references are remapped.
 */
export function instrumentModule(original: Uint8Array, options: InstrumentOptions): InstrumentedModule {
  const sections = parseSections(original);
  const importedMemories: ImportedMemory[] = [];
  let importedGlobals = 0;
  let definedGlobals = 0;
  let importedFuncs = 0;
  let memoryIndex = 0;
  let paramsByType: number[] = [];
  let funcTypes: number[] = [];

  // First pass over the headers: what the rewrite must know before touching code.
  for (const s of sections) {
    if (s.id === SectionId.Type) paramsByType = readTypes(s);
    if (s.id === SectionId.Function) funcTypes = readFunctionTypes(s);
    if (s.id === SectionId.Global) definedGlobals = new ByteReader(s.payload).u32();
    if (s.id === SectionId.Import) {
      const out = new ByteWriter();
      const counts = rewriteImports(s, out, options, importedMemories, () => memoryIndex++);
      importedFuncs = counts.funcs;
      importedGlobals = counts.globals;
      s.payload = out.toBytes();
    }
  }
  const typeCount = paramsByType.length;
  const rw: Rewrite = {
    meter: options.meter,
    importedFuncs,
    fuelGlobal: importedGlobals + definedGlobals,
    refuelFunc: importedFuncs,
    checkPoints: 0,
  };

  for (const s of sections) {
    if (s.id === SectionId.Memory)
      s.payload = rewriteMemories(s, options.maxMemoryPages, () => memoryIndex++);
    if (!options.meter) continue;
    switch (s.id) {
      case SectionId.Type:
        s.payload = appendToVector(s.payload, REFUEL_TYPE);
        break;
      case SectionId.Import:
        s.payload = appendToVector(s.payload, refuelImport(typeCount));
        break;
      case SectionId.Global:
        s.payload = rewriteGlobals(s, rw);
        break;
      case SectionId.Export:
        s.payload = rewriteExports(s, rw);
        break;
      case SectionId.Start:
        s.payload = new ByteWriter().u32(remap(rw, new ByteReader(s.payload).u32())).toBytes();
        break;
      case SectionId.Element:
        s.payload = rewriteElements(s, rw);
        break;
      case SectionId.Code: {
        const code = rewriteCode(s.payload, s.offset, {
          fuelGlobal: rw.fuelGlobal,
          refuelFunc: rw.refuelFunc,
          paramCounts: funcTypes.map((t) => paramsByType[t] ?? 0),
          remap: (index) => remap(rw, index),
        });
        s.payload = code.payload;
        rw.checkPoints = code.checkPoints;
        break;
      }
    }
  }
  if (options.meter) {
    const has = (id: number) => sections.some((s) => s.id === id);
    if (!has(SectionId.Type)) insertSection(sections, section(SectionId.Type, vector([REFUEL_TYPE])));
    if (!has(SectionId.Import))
      insertSection(sections, section(SectionId.Import, vector([refuelImport(typeCount)])));
    if (!has(SectionId.Global)) insertSection(sections, section(SectionId.Global, vector([fuelGlobal()])));
    if (!has(SectionId.Export)) insertSection(sections, section(SectionId.Export, vector([fuelExport(rw)])));
  }
  // Function indices moved: a stale name section would name the wrong functions in traps.
  const kept = options.meter
    ? sections.filter((s) => !(s.id === SectionId.Custom && s.name === "name"))
    : sections;
  return { bytes: encodeModule(kept), importedMemories, checkPoints: rw.checkPoints };
}

function section(id: number, payload: Uint8Array): Section {
  return { id, payload, offset: -1 };
}

function vector(items: Uint8Array[]): Uint8Array {
  const w = new ByteWriter().u32(items.length);
  for (const item of items) w.bytes(item);
  return w.toBytes();
}

function appendToVector(payload: Uint8Array, item: Uint8Array): Uint8Array {
  const r = new ByteReader(payload);
  const count = r.u32();
  return new ByteWriter()
    .u32(count + 1)
    .bytes(payload.subarray(r.offset))
    .bytes(item)
    .toBytes();
}

function refuelImport(typeIndex: number): Uint8Array {
  return new ByteWriter().name(FUEL_IMPORT.module).name(FUEL_IMPORT.name).u8(0x00).u32(typeIndex).toBytes();
}

function fuelGlobal(): Uint8Array {
  // Starts at zero: the first check point goes negative and asks the host for the first slice.
  return new Uint8Array([0x7e, 0x01, 0x42, 0x00, 0x0b]);
}

function fuelExport(rw: Rewrite): Uint8Array {
  return new ByteWriter().name(FUEL_EXPORT).u8(0x03).u32(rw.fuelGlobal).toBytes();
}

function remap(rw: Rewrite, funcIndex: number): number {
  return rw.meter && funcIndex >= rw.importedFuncs ? funcIndex + 1 : funcIndex;
}

/** Parameter count of each function type. */
function readTypes(s: Section): number[] {
  const r = new ByteReader(s.payload, 0);
  const count = r.u32();
  const params: number[] = [];
  for (let i = 0; i < count; i++) {
    // Recursive groups would make the vector length differ from the type index space.
    if (r.u8() !== 0x60) throw unsupportedTypes(s.offset + r.offset - 1);
    for (let list = 0; list < 2; list++) {
      const n = r.u32();
      if (list === 0) params.push(n);
      for (let j = 0; j < n; j++) if (!SINGLE_BYTE_VALTYPES.has(r.u8())) throw unsupportedTypes(s.offset);
    }
  }
  return params;
}

function readFunctionTypes(s: Section): number[] {
  const r = new ByteReader(s.payload);
  const count = r.u32();
  const types: number[] = [];
  for (let i = 0; i < count; i++) types.push(r.u32());
  return types;
}

function unsupportedTypes(offset: number): MagikError {
  return new MagikError("NotSupported", "only plain function types are supported (no GC types)", {
    details: { offset },
  });
}

function rewriteImports(
  s: Section,
  out: ByteWriter,
  options: InstrumentOptions,
  memories: ImportedMemory[],
  nextMemory: () => number,
): { funcs: number; globals: number } {
  const r = new ByteReader(s.payload);
  const count = r.u32();
  out.u32(count);
  let funcs = 0;
  let globals = 0;
  for (let i = 0; i < count; i++) {
    const start = r.offset;
    const module = r.name();
    const name = r.name();
    if (module === FUEL_IMPORT.module) {
      throw new MagikError("InvalidBundle", `the module imports from the reserved namespace "${module}"`, {
        details: { module, name },
        hint: "The magikrun import namespace belongs to the runtime's metering.",
      });
    }
    const kind = r.u8();
    out.bytes(s.payload.subarray(start, r.offset));
    const bodyStart = r.offset;
    if (kind === 0x00) {
      funcs++;
      r.u32();
    } else if (kind === 0x01) {
      r.u8();
      const limits = r.u8();
      r.u32();
      if (limits & 0x01) r.u32();
    } else if (kind === 0x02) {
      const index = nextMemory();
      const type = capMemoryLimits(r, out, options.maxMemoryPages, { index, imported: true });
      memories.push({ module, name, type });
      continue;
    } else if (kind === 0x03) {
      globals++;
      if (!SINGLE_BYTE_VALTYPES.has(r.u8())) throw unsupportedTypes(s.offset + r.offset);
      r.u8();
    } else if (kind === 0x04) {
      r.u8();
      r.u32();
    } else {
      throw malformed(`unknown import kind ${kind}`, s.offset + r.offset);
    }
    out.bytes(s.payload.subarray(bodyStart, r.offset));
  }
  return { funcs, globals };
}

function rewriteMemories(s: Section, maxPages: number, nextMemory: () => number): Uint8Array {
  const r = new ByteReader(s.payload);
  const count = r.u32();
  const w = new ByteWriter().u32(count);
  for (let i = 0; i < count; i++) capMemoryLimits(r, w, maxPages, { index: nextMemory(), imported: false });
  return w.toBytes();
}

/** Copies a constant expression, remapping ref.func. */
function copyConstExpr(r: ByteReader, w: ByteWriter, rw: Rewrite): void {
  let copied = r.offset;
  readConstExprEnd(r, (instr, _start) => {
    w.bytes(r.bytes.subarray(copied, instr.indexStart)).u32(remap(rw, instr.funcIndex));
    copied = r.offset;
  });
  w.bytes(r.bytes.subarray(copied, r.offset));
}

function rewriteGlobals(s: Section, rw: Rewrite): Uint8Array {
  const r = new ByteReader(s.payload);
  const count = r.u32();
  const w = new ByteWriter().u32(count + 1);
  for (let i = 0; i < count; i++) {
    const type = r.u8();
    if (!SINGLE_BYTE_VALTYPES.has(type)) throw unsupportedTypes(s.offset + r.offset);
    w.u8(type).u8(r.u8());
    copyConstExpr(r, w, rw);
  }
  return w.bytes(fuelGlobal()).toBytes();
}

function rewriteExports(s: Section, rw: Rewrite): Uint8Array {
  const r = new ByteReader(s.payload);
  const count = r.u32();
  const w = new ByteWriter().u32(count + 1);
  for (let i = 0; i < count; i++) {
    const start = r.offset;
    const name = r.name();
    if (name === FUEL_EXPORT) {
      throw new MagikError("InvalidBundle", `the module exports the reserved name "${name}"`, {
        details: { export: name },
      });
    }
    const kind = r.u8();
    w.bytes(s.payload.subarray(start, r.offset));
    const index = r.u32();
    w.u32(kind === 0x00 ? remap(rw, index) : index);
  }
  return w.bytes(fuelExport(rw)).toBytes();
}

function rewriteElements(s: Section, rw: Rewrite): Uint8Array {
  const r = new ByteReader(s.payload);
  const count = r.u32();
  const w = new ByteWriter().u32(count);
  for (let i = 0; i < count; i++) {
    const flags = r.u32();
    if (flags > 7) throw malformed(`element segment flags ${flags}`, s.offset + r.offset);
    w.u32(flags);
    if (flags & 0x02 && !(flags & 0x01)) w.u32(r.u32()); // explicit table index
    if (!(flags & 0x01)) copyConstExpr(r, w, rw); // active: offset expression
    if (flags & 0x03) w.u8(r.u8()); // element kind or reference type
    const n = r.u32();
    w.u32(n);
    for (let j = 0; j < n; j++) {
      if (flags & 0x04) copyConstExpr(r, w, rw);
      else w.u32(remap(rw, r.u32()));
    }
  }
  return w.toBytes();
}
