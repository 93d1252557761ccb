import { ByteReader, ByteWriter, malformed } from "./bytes.ts";

export const SectionId = {
  Custom: 0,
  Type: 1,
  Import: 2,
  Function: 3,
  Table: 4,
  Memory: 5,
  Global: 6,
  Export: 7,
  Start: 8,
  Element: 9,
  Code: 10,
  Data: 11,
  DataCount: 12,
  Tag: 13,
} as const;

/** Position of each known section in the order the binary format requires (tag sits between memory and global). */
const ORDER: Record<number, number> = {
  1: 1,
  2: 2,
  3: 3,
  4: 4,
  5: 5,
  13: 6,
  6: 7,
  7: 8,
  8: 9,
  9: 10,
  12: 11,
  10: 12,
  11: 13,
};

export interface Section {
  id: number;
  payload: Uint8Array;
  /** Offset of the payload in the original module, for error messages. */
  offset: number;
  /** Custom sections only. */
  name?: string;
}

const HEADER = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];

export function parseSections(bytes: Uint8Array): Section[] {
  if (bytes.length < 8 || HEADER.some((b, i) => bytes[i] !== b)) {
    throw malformed("missing \\0asm version 1 header", 0);
  }
  const r = new ByteReader(bytes, 8);
  const sections: Section[] = [];
  while (!r.done) {
    const id = r.u8();
    const size = r.u32();
    const offset = r.offset;
    const payload = r.slice(size);
    const section: Section = { id, payload, offset };
    if (id === SectionId.Custom) section.name = new ByteReader(payload).name();
    else if (ORDER[id] === undefined) throw malformed(`unknown section id ${id}`, offset - 1);
    sections.push(section);
  }
  return sections;
}

/** Places a new section where the format's ordering requires it. */
export function insertSection(sections: Section[], section: Section): void {
  const rank = ORDER[section.id]!;
  const at = sections.findIndex((s) => s.id !== SectionId.Custom && ORDER[s.id]! > rank);
  if (at === -1) sections.push(section);
  else sections.splice(at, 0, section);
}

export function encodeModule(sections: readonly Section[]): Uint8Array {
  const w = new ByteWriter().bytes(new Uint8Array(HEADER));
  for (const s of sections) w.u8(s.id).framed(s.payload);
  return w.toBytes();
}
