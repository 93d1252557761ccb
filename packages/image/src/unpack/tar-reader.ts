import { MagikError } from "@magikrun/spec";
import { ByteReader } from "./byte-reader.ts";

/**
 * A strict streaming tar reader (ustar, PAX, GNU long names) written for hostile input. node-tar's parser was not
 * used because it drops `SCHILY.xattr.*` records and silently truncates PAX values at NUL, and a layer reader must
 * see both. Names are decoded exactly; validation (NUL, length) happens here, path policy in the extractor.
 */

export type TarEntryType = "file" | "dir" | "symlink" | "hardlink" | "char" | "block" | "fifo";

export interface TarHeader {
  path: string;
  type: TarEntryType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Seconds since the epoch, possibly fractional (PAX). */
  mtime: number;
  linkpath: string;
  devmajor: number;
  devminor: number;
  xattrs: Map<string, Uint8Array>;
}

/** Linux PATH_MAX and NAME_MAX: longer names cannot be created, so they are refused up front. */
export const MAX_PATH_BYTES = 4096;
export const MAX_NAME_BYTES = 255;
/** Bounds the memory a PAX or GNU long-name record can make us hold. */
export const MAX_EXTENDED_HEADER_BYTES = 1024 * 1024;

const BLOCK = 512;
const decoder = new TextDecoder("utf-8");

function extractionError(message: string, details: Record<string, unknown>): MagikError {
  return new MagikError("LayerExtractionFailed", message, { details });
}

function cString(block: Uint8Array, offset: number, width: number): Uint8Array {
  const field = block.subarray(offset, offset + width);
  const end = field.indexOf(0);
  return end < 0 ? field : field.subarray(0, end);
}

function numeric(block: Uint8Array, offset: number, width: number, field: string): number {
  const raw = block.subarray(offset, offset + width);
  if (raw[0]! & 0x80) {
    // GNU base-256: big-endian, high bit set on the first byte.
    let value = raw[0]! & 0x7f;
    for (let i = 1; i < raw.length; i++) value = value * 256 + raw[i]!;
    if (!Number.isSafeInteger(value)) throw extractionError(`tar ${field} too large`, { field });
    return value;
  }
  const text = decoder.decode(cString(block, offset, width)).trim();
  if (text === "") return 0;
  if (!/^[0-7]+$/.test(text)) throw extractionError(`malformed tar ${field} field`, { field, value: text });
  return Number.parseInt(text, 8);
}

function checksumValid(block: Uint8Array): boolean {
  const stored = numeric(block, 148, 8, "checksum");
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const byte = i >= 148 && i < 156 ? 0x20 : block[i]!;
    unsigned += byte;
    signed += byte > 127 ? byte - 256 : byte;
  }
  return stored === unsigned || stored === signed;
}

/** Parses PAX records ("<len> <key>=<value>\n"), binary-safe: values keep NUL and newlines. */
function parsePax(body: Uint8Array): Map<string, Uint8Array> {
  const records = new Map<string, Uint8Array>();
  let offset = 0;
  while (offset < body.length) {
    if (body[offset] === 0) break;
    const space = body.indexOf(0x20, offset);
    const len = space < 0 ? Number.NaN : Number(decoder.decode(body.subarray(offset, space)));
    if (
      !Number.isSafeInteger(len) ||
      len <= 0 ||
      offset + len > body.length ||
      body[offset + len - 1] !== 0x0a
    ) {
      throw extractionError("malformed PAX extended header", { offset });
    }
    const record = body.subarray(space + 1, offset + len - 1);
    const eq = record.indexOf(0x3d);
    if (eq < 0) throw extractionError("malformed PAX record (no '=')", { offset });
    records.set(decoder.decode(record.subarray(0, eq)), record.subarray(eq + 1));
    offset += len;
  }
  return records;
}

function textWithoutNul(value: Uint8Array, what: string): string {
  if (value.includes(0)) {
    throw extractionError(`NUL byte in tar ${what}`, { field: what, value: decoder.decode(value) });
  }
  return decoder.decode(value);
}

/** GNU long-name data ends with NUL; a NUL anywhere else would hide part of the name. */
function gnuLongValue(value: Uint8Array, what: string): string {
  let end = value.length;
  while (end > 0 && value[end - 1] === 0) end--;
  return textWithoutNul(value.subarray(0, end), what);
}

export function checkNameLength(path: string, field: string): void {
  const bytes = Buffer.byteLength(path);
  if (bytes > MAX_PATH_BYTES) {
    throw extractionError(`tar ${field} is ${bytes} bytes, over ${MAX_PATH_BYTES}`, {
      field,
      bytes,
      value: `${path.slice(0, 80)}...`,
    });
  }
  for (const part of path.split("/")) {
    if (Buffer.byteLength(part) > MAX_NAME_BYTES) {
      throw extractionError(`a component of tar ${field} is over ${MAX_NAME_BYTES} bytes`, {
        field,
        component: `${part.slice(0, 80)}...`,
      });
    }
  }
}

const TYPES: Record<string, TarEntryType> = {
  "0": "file",
  "\0": "file",
  "7": "file",
  "1": "hardlink",
  "2": "symlink",
  "3": "char",
  "4": "block",
  "5": "dir",
  "6": "fifo",
};

async function readExtended(reader: ByteReader, size: number, kind: string): Promise<Uint8Array> {
  if (size > MAX_EXTENDED_HEADER_BYTES) {
    throw extractionError(`${kind} header of ${size} bytes is over ${MAX_EXTENDED_HEADER_BYTES}`, { size });
  }
  const body = await reader.read(size);
  if (body.length < size) throw extractionError("tar archive truncated in an extended header", { kind });
  await reader.skip((BLOCK - (size % BLOCK)) % BLOCK);
  return body;
}

/**
 * Reads entries in order. The caller must finish with `body` before asking for the next entry (unread body bytes
 * are skipped). After the end-of-archive marker, the rest of the stream is drained so a digest over it is complete.
 */
export async function* readTar(
  source: AsyncIterable<Uint8Array>,
): AsyncGenerator<{ header: TarHeader; body: AsyncIterable<Uint8Array> }> {
  const reader = new ByteReader(source);
  let local = new Map<string, Uint8Array>();
  let gnuPath: string | undefined;
  let gnuLink: string | undefined;
  try {
    for (;;) {
      const block = await reader.read(BLOCK);
      if (block.length === 0) throw extractionError("tar archive ended without an end-of-archive marker", {});
      if (block.length < BLOCK) throw extractionError("tar archive truncated in a header", {});
      if (block.every((b) => b === 0)) {
        await reader.drain();
        return;
      }
      if (!checksumValid(block)) throw extractionError("tar header checksum mismatch", {});
      const typeflag = String.fromCharCode(block[156]!);
      const size = numeric(block, 124, 12, "size");
      if (typeflag === "x" || typeflag === "g") {
        const records = parsePax(await readExtended(reader, size, "PAX"));
        // Global records are read and dropped, as Go's archive/tar (which wrote most layers) and containerd do.
        if (typeflag === "x") local = records;
        continue;
      }
      if (typeflag === "L" || typeflag === "K") {
        const value = gnuLongValue(
          await readExtended(reader, size, "GNU long name"),
          typeflag === "L" ? "path" : "linkpath",
        );
        if (typeflag === "L") gnuPath = value;
        else gnuLink = value;
        continue;
      }
      const pax = local;
      const ustarName = cString(block, 0, 100);
      const prefix =
        decoder.decode(block.subarray(257, 263)) === "ustar\0" ? cString(block, 345, 155) : undefined;
      const paxPath = pax.get("path");
      const paxLink = pax.get("linkpath");
      let path =
        paxPath !== undefined
          ? textWithoutNul(paxPath, "PAX path")
          : (gnuPath ??
            (prefix && prefix.length > 0
              ? `${decoder.decode(prefix)}/${decoder.decode(ustarName)}`
              : decoder.decode(ustarName)));
      const linkpath =
        paxLink !== undefined
          ? textWithoutNul(paxLink, "PAX linkpath")
          : (gnuLink ?? decoder.decode(cString(block, 157, 100)));
      let type = TYPES[typeflag];
      if (type === undefined) {
        throw extractionError(`unsupported tar entry type ${JSON.stringify(typeflag)}`, { path, typeflag });
      }
      if (type === "file" && typeflag !== "7" && path.endsWith("/")) type = "dir";
      checkNameLength(path, "path");
      if (linkpath !== "") checkNameLength(linkpath, "linkpath");
      if (type === "dir") path = path.replace(/\/+$/, "");
      const xattrs = new Map<string, Uint8Array>();
      for (const [key, value] of pax) {
        if (key.startsWith("SCHILY.xattr.")) xattrs.set(key.slice("SCHILY.xattr.".length), value);
      }
      const paxNumber = (key: string, fallback: number) => {
        const raw = pax.get(key);
        if (raw === undefined) return fallback;
        const value = Number(decoder.decode(raw));
        if (!Number.isFinite(value) || value < 0)
          throw extractionError(`malformed PAX ${key}`, { path, key });
        return value;
      };
      const header: TarHeader = {
        path,
        type,
        mode: numeric(block, 100, 8, "mode") & 0o7777,
        uid: paxNumber("uid", numeric(block, 108, 8, "uid")),
        gid: paxNumber("gid", numeric(block, 116, 8, "gid")),
        size: type === "file" ? paxNumber("size", size) : 0,
        mtime: paxNumber("mtime", numeric(block, 136, 12, "mtime")),
        linkpath,
        devmajor: numeric(block, 329, 8, "devmajor"),
        devminor: numeric(block, 337, 8, "devminor"),
        xattrs,
      };
      // Only regular files have data; for the other types the size field is ignored, as Go's archive/tar does.
      const bodySize = type === "file" ? header.size : 0;
      local = new Map();
      gnuPath = undefined;
      gnuLink = undefined;
      let consumed = 0;
      const body = (async function* () {
        for await (const chunk of reader.chunks(type === "file" ? bodySize : 0)) {
          consumed += chunk.length;
          yield chunk;
        }
      })();
      yield { header, body };
      consumed += await reader.skip(bodySize - consumed);
      if (consumed < bodySize) throw extractionError("tar archive truncated in an entry's data", { path });
      await reader.skip((BLOCK - (bodySize % BLOCK)) % BLOCK);
    }
  } finally {
    await reader.close();
  }
}
