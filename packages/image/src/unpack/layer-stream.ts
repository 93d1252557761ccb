import zlib from "node:zlib";
import { type LayerCompression, MagikError } from "@magikrun/spec";

/**
 * Decompresses a layer blob as a stream and measures what comes out: the uncompressed size is counted against a
 * limit *as it is produced* (a gzip bomb stops at the limit, it is never inflated whole) and hashed for the
 * diff_id check.
 */

export interface MeasuredStream {
  chunks: AsyncIterable<Uint8Array>;
  /** Bytes produced so far. */
  bytes(): number;
  /** `sha256:<hex>` of everything produced; call after the stream is fully consumed. */
  digest(): string;
}

export interface SizeLimit {
  max: number;
  name: "MAX_LAYER_SIZE" | "MAX_ROOTFS_SIZE";
  /** Bytes already counted against this limit before this stream (rootfs total). */
  already?: number;
}

async function* decompress(
  input: AsyncIterable<Uint8Array>,
  compression: LayerCompression,
): AsyncGenerator<Uint8Array> {
  if (compression === "none") {
    yield* input;
    return;
  }
  const inflater = compression === "gzip" ? zlib.createGunzip() : zlib.createZstdDecompress();
  const source = input[Symbol.asyncIterator]();
  let pumpError: unknown;
  const pump = (async () => {
    try {
      for (;;) {
        if (inflater.destroyed) return;
        const next = await source.next();
        if (next.done) break;
        if (!inflater.write(next.value)) {
          await new Promise<void>((resolve) => {
            const done = () => {
              inflater.off("drain", done);
              inflater.off("close", done);
              resolve();
            };
            inflater.once("drain", done);
            inflater.once("close", done);
          });
        }
      }
      inflater.end();
    } catch (err) {
      pumpError = err;
      inflater.destroy(err as Error);
    }
  })();
  try {
    for await (const chunk of inflater) {
      const buf = chunk as Buffer;
      yield new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
    }
  } catch (err) {
    throw (
      pumpError ??
      new MagikError(
        "LayerExtractionFailed",
        `cannot decompress ${compression} layer: ${(err as Error).message}`,
        {
          cause: err,
          details: { compression },
        },
      )
    );
  } finally {
    inflater.destroy();
    await source.return?.();
    await pump;
  }
}

/** Decompresses `input` and enforces the size limits on the decompressed bytes. */
export function measuredLayerStream(
  input: AsyncIterable<Uint8Array>,
  compression: LayerCompression,
  limits: SizeLimit[],
): MeasuredStream {
  const hasher = new Bun.CryptoHasher("sha256");
  let produced = 0;
  async function* measured(): AsyncGenerator<Uint8Array> {
    for await (const chunk of decompress(input, compression)) {
      produced += chunk.length;
      for (const limit of limits) {
        const total = produced + (limit.already ?? 0);
        if (total > limit.max) {
          throw new MagikError("ImageTooLarge", `${limit.name} exceeded while decompressing a layer`, {
            details: { limit: limit.name, max: limit.max, value: total },
            hint: `Raise ${limit.name} for this instance if the image is legitimately this large.`,
          });
        }
      }
      hasher.update(chunk);
      yield chunk;
    }
  }
  return {
    chunks: measured(),
    bytes: () => produced,
    digest: () => `sha256:${hasher.digest("hex")}`,
  };
}
