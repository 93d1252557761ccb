import { MagikError } from "@magikrun/spec";
import type { ByteReader, ByteWriter } from "./bytes.ts";

export interface MemoryType {
  minPages: number;
  maxPages: number;
  shared: boolean;
}

/**
 * Reads a memory's limits and writes them back with the maximum capped at `limitPages`. The engine then refuses
 * `memory.grow` past the cap by returning -1, as wasmtime's ResourceLimiter does, with no check in the hot path.
 */
export function capMemoryLimits(
  r: ByteReader,
  w: ByteWriter,
  limitPages: number,
  where: { index: number; imported: boolean },
): MemoryType {
  const at = r.offset;
  const flags = r.u8();
  if (flags & ~0x03) {
    throw new MagikError("NotSupported", "64-bit or custom-page-size memories are not supported", {
      details: { memoryIndex: where.index, flags, offset: at },
      hint: "Build the module for wasm32.",
    });
  }
  const minPages = r.u32();
  const declaredMax = flags & 0x01 ? r.u32() : undefined;
  if (minPages > limitPages) {
    throw new MagikError(
      "ResourceExhausted",
      `memory ${where.index} needs ${minPages} pages, over the limit`,
      {
        details: { limit: "maxMemoryPages", max: limitPages, value: minPages, memoryIndex: where.index },
        hint: "Raise maxMemoryPages (--max-memory-pages) for this container, up to MAX_WASM_MEMORY_PAGES.",
      },
    );
  }
  const maxPages = Math.min(declaredMax ?? limitPages, limitPages);
  const shared = (flags & 0x02) !== 0;
  w.u8(flags | 0x01)
    .u32(minPages)
    .u32(maxPages);
  return { minPages, maxPages, shared };
}
