import { Errno, SIZE_IOVEC } from "./constants.ts";
import { fail } from "./errors.ts";

const utf8 = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();

/**
 * Access to the guest's linear memory for the duration of one call. Memory can grow between calls (never during
 * one: host calls do not run guest code), so a view is taken fresh per call and never kept.
 */
export class GuestView {
  readonly view: DataView;
  readonly bytes: Uint8Array;

  constructor(memory: WebAssembly.Memory) {
    this.view = new DataView(memory.buffer);
    this.bytes = new Uint8Array(memory.buffer);
  }

  u8(ptr: number): number {
    return this.view.getUint8(ptr);
  }
  u16(ptr: number): number {
    return this.view.getUint16(ptr, true);
  }
  u32(ptr: number): number {
    return this.view.getUint32(ptr, true);
  }
  u64(ptr: number): bigint {
    return this.view.getBigUint64(ptr, true);
  }
  setU8(ptr: number, value: number): void {
    this.view.setUint8(ptr, value);
  }
  setU16(ptr: number, value: number): void {
    this.view.setUint16(ptr, value, true);
  }
  setU32(ptr: number, value: number): void {
    this.view.setUint32(ptr, value, true);
  }
  setU64(ptr: number, value: bigint | number): void {
    this.view.setBigUint64(ptr, BigInt(value), true);
  }

  /** A window onto guest memory (no copy); bounds are checked so a bad pointer is EFAULT, not a silent clamp. */
  slice(ptr: number, len: number): Uint8Array {
    if (ptr < 0 || len < 0 || ptr + len > this.bytes.length) fail(Errno.FAULT);
    return this.bytes.subarray(ptr, ptr + len);
  }

  /** A path or name argument: must be valid UTF-8 (EILSEQ) and free of NUL (EINVAL, as POSIX hosts report). */
  string(ptr: number, len: number): string {
    // A copy: TextDecoder refuses views of shared memory, and the bytes must not change while decoded.
    const raw = this.slice(ptr, len).slice();
    if (raw.includes(0)) fail(Errno.INVAL);
    try {
      return utf8.decode(raw);
    } catch {
      return fail(Errno.ILSEQ);
    }
  }

  /** The buffers of an iovec/ciovec array, as windows onto guest memory. */
  iovecs(ptr: number, count: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (let i = 0; i < count; i++) {
      const base = ptr + i * SIZE_IOVEC;
      out.push(this.slice(this.u32(base), this.u32(base + 4)));
    }
    return out;
  }
}

export function encode(text: string): Uint8Array {
  return encoder.encode(text);
}
