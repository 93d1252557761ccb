import { MagikError } from "@magikrun/spec";

/** What `put` accepts: bytes in memory, a web stream (e.g. a fetch body) or any async iterable of chunks. */
export type BlobSource = Uint8Array | ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>;

/** One pull-based view over both stream kinds, so the write loop and cancellation are written once. */
export interface ChunkReader {
  /** Next chunk, or undefined at the end. */
  next(): Promise<Uint8Array | undefined>;
  /**
   * Tells the producer to stop (a fetch body closes its connection). Never throws and never waits: a producer stuck
   * in a slow read must not hold up the caller's error.
   */
  cancel(reason?: unknown): void;
}

export function chunkReader(source: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>): ChunkReader {
  if (source instanceof ReadableStream) {
    const reader = source.getReader();
    let ahead: ReturnType<typeof reader.read> | undefined;
    return {
      // One read stays in flight so the producer (network, disk) fills the next chunk while this one is hashed.
      // Only for web streams: they hand over ownership of each chunk, while an async generator may refill the
      // buffer it just yielded as soon as it is resumed.
      async next() {
        const { done, value } = await (ahead ?? reader.read());
        ahead = done ? undefined : reader.read();
        // Nobody awaits it when the put fails first; its rejection must not surface as unhandled.
        ahead?.catch(() => {});
        return done ? undefined : checkChunk(value);
      },
      cancel(reason) {
        reader.cancel(reason).catch(() => {});
      },
    };
  }
  const iterator = source[Symbol.asyncIterator]();
  return {
    async next() {
      const { done, value } = await iterator.next();
      return done ? undefined : checkChunk(value);
    },
    cancel() {
      Promise.resolve(iterator.return?.()).catch(() => {});
    },
  };
}

/** Closes a source that will not be read, so its producer does not keep a connection or file open. */
export function discardSource(source: unknown, reason?: unknown): void {
  if (source instanceof ReadableStream) {
    if (!source.locked) source.cancel(reason).catch(() => {});
  } else if (isBlobSource(source) && !(source instanceof Uint8Array)) {
    chunkReader(source).cancel(reason);
  }
}

function checkChunk(value: unknown): Uint8Array {
  if (value instanceof Uint8Array) return value;
  throw new MagikError("InvalidInput", "blob sources must yield Uint8Array chunks", {
    details: { chunkType: value === null ? "null" : typeof value },
  });
}

export function isBlobSource(value: unknown): value is BlobSource {
  return (
    value instanceof Uint8Array ||
    value instanceof ReadableStream ||
    (typeof value === "object" && value !== null && Symbol.asyncIterator in value)
  );
}
