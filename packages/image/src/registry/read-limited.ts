import { MagikError } from "@magikrun/spec";

/**
 * Reads a response body into memory, refusing it as soon as it crosses `max` bytes (a declared Content-Length
 * over the limit is refused before reading): a hostile registry cannot make us buffer a huge "manifest".
 */
export async function readLimited(
  res: Response,
  max: number,
  what: { limit: string; name: string },
): Promise<Uint8Array> {
  const tooLarge = (size: number) =>
    new MagikError("ImageTooLarge", `${what.name} is larger than ${what.limit} (${max} bytes)`, {
      details: { limit: what.limit, max, size },
    });
  const declared = Number(res.headers.get("content-length") ?? Number.NaN);
  if (Number.isFinite(declared) && declared > max) {
    await res.body?.cancel();
    throw tooLarge(declared);
  }
  if (!res.body) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > max) {
      await reader.cancel();
      throw tooLarge(total);
    }
    chunks.push(value);
  }
  const out = new Uint8Array(total);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.length;
  }
  return out;
}
