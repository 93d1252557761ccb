import { MagikError } from "@magikrun/spec";

/** Thrown for bytes that do not form a module this rewriter understands; callers wrap it with the module path. */
export function malformed(message: string, offset: number): MagikError {
  return new MagikError("InvalidBundle", `malformed wasm module: ${message} at byte ${offset}`, {
    details: { offset },
    hint: "The module is truncated or not a WebAssembly binary; rebuild it.",
  });
}

/** Cursor over a module's bytes. Every read is bounds-checked so truncated input fails with its offset. */
export class ByteReader {
  offset: number;

  constructor(
    readonly bytes: Uint8Array,
    offset = 0,
    readonly end: number = bytes.length,
  ) {
    this.offset = offset;
  }

  get done(): boolean {
    return this.offset >= this.end;
  }

  u8(): number {
    if (this.offset >= this.end) throw malformed("unexpected end", this.offset);
    return this.bytes[this.offset++]!;
  }

  peek(): number {
    if (this.offset >= this.end) throw malformed("unexpected end", this.offset);
    return this.bytes[this.offset]!;
  }

  u32(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      const byte = this.u8();
      result += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) break;
      shift += 7;
      if (shift > 28) throw malformed("LEB128 u32 too long", this.offset);
    }
    if (result > 0xffff_ffff) throw malformed("LEB128 u32 out of range", this.offset);
    return result;
  }

  /** Signed LEB128 of up to `bits` bits, decoded as a number (exact up to 53 bits, which is all we need). */
  sleb(bits: 32 | 33 | 64): number {
    let result = 0;
    let shift = 0;
    let byte: number;
    do {
      byte = this.u8();
      result += (byte & 0x7f) * 2 ** shift;
      shift += 7;
      if (shift > bits + 7) throw malformed("LEB128 too long", this.offset);
    } while (byte & 0x80);
    if (shift < 64 && byte & 0x40) result -= 2 ** shift;
    return result;
  }

  /** Skips a LEB128 of any width without decoding it (offsets, 64-bit constants). */
  skipLeb(): void {
    for (let n = 0; n < 10; n++) if ((this.u8() & 0x80) === 0) return;
    throw malformed("LEB128 too long", this.offset);
  }

  skip(n: number): void {
    if (n < 0 || this.offset + n > this.end) throw malformed("unexpected end", this.offset);
    this.offset += n;
  }

  slice(n: number): Uint8Array {
    const start = this.offset;
    this.skip(n);
    return this.bytes.subarray(start, start + n);
  }

  name(): string {
    return new TextDecoder("utf-8", { fatal: true }).decode(this.slice(this.u32()));
  }
}

/** Growable output buffer with the LEB128 encoders the rewriter needs. */
export class ByteWriter {
  #buf = new Uint8Array(256);
  length = 0;

  #reserve(n: number): void {
    if (this.length + n <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(0, this.length));
    this.#buf = next;
  }

  u8(byte: number): this {
    this.#reserve(1);
    this.#buf[this.length++] = byte;
    return this;
  }

  bytes(data: Uint8Array): this {
    this.#reserve(data.length);
    this.#buf.set(data, this.length);
    this.length += data.length;
    return this;
  }

  u32(value: number): this {
    do {
      let byte = value & 0x7f;
      value = Math.floor(value / 128);
      if (value !== 0) byte |= 0x80;
      this.u8(byte);
    } while (value !== 0);
    return this;
  }

  /** Signed LEB128 for values that fit a double exactly (all costs and constants we emit do). */
  sleb(value: number): this {
    for (;;) {
      const byte = value & 0x7f;
      value = Math.floor(value / 128);
      const done = (value === 0 && (byte & 0x40) === 0) || (value === -1 && (byte & 0x40) !== 0);
      this.u8(done ? byte : byte | 0x80);
      if (done) return this;
    }
  }

  name(text: string): this {
    const encoded = new TextEncoder().encode(text);
    return this.u32(encoded.length).bytes(encoded);
  }

  /** Appends `payload` prefixed with its length, as sections and function bodies are framed. */
  framed(payload: Uint8Array): this {
    return this.u32(payload.length).bytes(payload);
  }

  toBytes(): Uint8Array {
    return this.#buf.slice(0, this.length);
  }
}
