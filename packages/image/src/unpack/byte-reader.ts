/**
 * Pull-based reader over a chunk stream: reads exact byte counts for headers and streams bodies chunk by chunk,
 * so a layer is never held in memory whole. Backpressure is natural: nothing is read before it is asked for.
 */
export class ByteReader {
  readonly #source: AsyncIterator<Uint8Array>;
  #chunks: Uint8Array[] = [];
  #buffered = 0;
  #ended = false;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.#source = source[Symbol.asyncIterator]();
  }

  async #pull(): Promise<boolean> {
    if (this.#ended) return false;
    const next = await this.#source.next();
    if (next.done) {
      this.#ended = true;
      return false;
    }
    if (next.value.length > 0) {
      this.#chunks.push(next.value);
      this.#buffered += next.value.length;
    }
    return true;
  }

  /** Exactly `n` bytes, or fewer only at end of stream. */
  async read(n: number): Promise<Uint8Array> {
    while (this.#buffered < n && (await this.#pull())) {}
    const size = Math.min(n, this.#buffered);
    const out = new Uint8Array(size);
    let offset = 0;
    while (offset < size) {
      const chunk = this.#chunks[0]!;
      const take = Math.min(chunk.length, size - offset);
      out.set(chunk.subarray(0, take), offset);
      offset += take;
      this.#consume(take);
    }
    return out;
  }

  #consume(n: number): void {
    const chunk = this.#chunks[0]!;
    if (n === chunk.length) this.#chunks.shift();
    else this.#chunks[0] = chunk.subarray(n);
    this.#buffered -= n;
  }

  /** Up to `n` bytes as chunks (no copies); stops early at end of stream. */
  async *chunks(n: number): AsyncGenerator<Uint8Array> {
    let left = n;
    while (left > 0) {
      if (this.#buffered === 0 && !(await this.#pull())) return;
      const chunk = this.#chunks[0]!;
      const take = Math.min(chunk.length, left);
      const piece = chunk.subarray(0, take);
      this.#consume(take);
      left -= take;
      yield piece;
    }
  }

  /** Skips `n` bytes; returns how many were actually there. */
  async skip(n: number): Promise<number> {
    let skipped = 0;
    for await (const chunk of this.chunks(n)) skipped += chunk.length;
    return skipped;
  }

  /** Reads and discards everything left (so a hash over the stream covers all of it). */
  async drain(): Promise<void> {
    this.#chunks = [];
    this.#buffered = 0;
    while (await this.#pull()) {
      this.#chunks = [];
      this.#buffered = 0;
    }
  }

  async close(): Promise<void> {
    await this.#source.return?.();
  }
}
