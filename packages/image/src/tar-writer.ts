import zlib from "node:zlib";

/**
 * A deterministic tar writer: the same entries always give the same bytes (fixed mtime, no user names, no
 * host-dependent fields), so layers built from it have stable digests. It writes exactly what it is given and never
 * normalises names, which is what tests need to build hostile archives (`..`, absolute paths, NUL in PAX records).
 *
 * Format: ustar headers, with PAX extended headers for whatever ustar cannot hold (long names, large ids or sizes,
 * fractional mtimes, xattrs as `SCHILY.xattr.*`), or GNU `L`/`K` records when `longNames: "gnu"` is asked for.
 */

/** Default mtime (seconds since the epoch) of every entry: the epoch, as reproducible-build tools use. */
export const DEFAULT_MTIME = 0;

export type TarFileData =
  | Uint8Array
  | string
  /** Streamed content: `size` is written into the header and must equal the total length of `chunks`. */
  | { size: number; chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array> };

interface EntryCommon {
  /** Written as given: no normalisation, no leading-slash stripping. */
  path: string;
  mode?: number;
  uid?: number;
  gid?: number;
  uname?: string;
  gname?: string;
  /** Seconds since the epoch (fractions go into PAX). Default DEFAULT_MTIME. */
  mtime?: number;
  /** Extended attributes, written as PAX `SCHILY.xattr.<name>` records. */
  xattrs?: Record<string, Uint8Array | string>;
  /** Extra raw PAX records, written after the generated ones (so they win): e.g. `{ path: "a\0b" }`. */
  pax?: Record<string, string | Uint8Array>;
  /** Overrides the header's typeflag byte (hostile or unusual archives). */
  typeflag?: string;
}

export type TarEntry =
  | (EntryCommon & { type: "file"; data?: TarFileData })
  | (EntryCommon & { type: "dir" })
  | (EntryCommon & { type: "symlink"; target: string })
  | (EntryCommon & { type: "hardlink"; target: string })
  | (EntryCommon & { type: "char" | "block"; major: number; minor: number })
  | (EntryCommon & { type: "fifo" });

export interface TarWriterOptions {
  /** How names longer than ustar allows are written. Default "pax". */
  longNames?: "pax" | "gnu";
}

const BLOCK = 512;
const encoder = new TextEncoder();

const TYPEFLAG: Record<TarEntry["type"], string> = {
  file: "0",
  hardlink: "1",
  symlink: "2",
  char: "3",
  block: "4",
  dir: "5",
  fifo: "6",
};

const DEFAULT_MODE: Record<TarEntry["type"], number> = {
  file: 0o644,
  hardlink: 0o644,
  symlink: 0o777,
  char: 0o644,
  block: 0o644,
  dir: 0o755,
  fifo: 0o644,
};

function bytesOf(value: string | Uint8Array): Uint8Array {
  return typeof value === "string" ? encoder.encode(value) : value;
}

/** Octal field of `width` bytes (digits + NUL), or undefined when the value does not fit. */
function octal(value: number, width: number): Uint8Array | undefined {
  if (!Number.isSafeInteger(value) || value < 0) return undefined;
  const digits = value.toString(8);
  if (digits.length > width - 1) return undefined;
  return encoder.encode(`${digits.padStart(width - 1, "0")}\0`);
}

/** One PAX record: "<len> <key>=<value>\n", where len counts itself. */
function paxRecord(key: string, value: Uint8Array): Uint8Array {
  const rest = encoder.encode(` ${key}=`).length + value.length + 1;
  let len = rest + String(rest).length;
  if (String(len).length !== String(rest).length) len = rest + String(len).length;
  return concat([encoder.encode(`${len} ${key}=`), value, encoder.encode("\n")]);
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

function padding(size: number): Uint8Array {
  const rest = size % BLOCK;
  return new Uint8Array(rest === 0 ? 0 : BLOCK - rest);
}

interface HeaderFields {
  name: Uint8Array;
  prefix?: Uint8Array;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname: Uint8Array;
  uname: Uint8Array;
  gname: Uint8Array;
  devmajor: number;
  devminor: number;
}

function encodeHeader(fields: HeaderFields): Uint8Array {
  const block = new Uint8Array(BLOCK);
  const put = (offset: number, width: number, value: Uint8Array | undefined) => {
    if (value) block.set(value.subarray(0, width), offset);
  };
  put(0, 100, fields.name);
  put(100, 8, octal(fields.mode, 8));
  put(108, 8, octal(fields.uid, 8) ?? octal(0, 8));
  put(116, 8, octal(fields.gid, 8) ?? octal(0, 8));
  put(124, 12, octal(fields.size, 12) ?? octal(0, 12));
  put(136, 12, octal(fields.mtime, 12) ?? octal(0, 12));
  block.fill(0x20, 148, 156);
  put(156, 1, encoder.encode(fields.typeflag));
  put(157, 100, fields.linkname);
  put(257, 6, encoder.encode("ustar\0"));
  put(263, 2, encoder.encode("00"));
  put(265, 32, fields.uname);
  put(297, 32, fields.gname);
  put(329, 8, octal(fields.devmajor, 8));
  put(337, 8, octal(fields.devminor, 8));
  put(345, 155, fields.prefix);
  let sum = 0;
  for (const byte of block) sum += byte;
  put(148, 8, encoder.encode(`${sum.toString(8).padStart(6, "0")}\0 `));
  return block;
}

/** Splits a name into ustar prefix/name at a slash, when it fits that way. */
function splitUstarName(name: Uint8Array): { prefix: Uint8Array; name: Uint8Array } | undefined {
  if (name.length <= 100) return { prefix: new Uint8Array(0), name };
  for (let i = name.length - 1; i >= 0; i--) {
    if (name[i] !== 0x2f) continue;
    if (i <= 155 && name.length - i - 1 <= 100 && name.length - i - 1 > 0) {
      return { prefix: name.subarray(0, i), name: name.subarray(i + 1) };
    }
    if (i < name.length - 101) return undefined;
  }
  return undefined;
}

function gnuLongRecord(typeflag: "L" | "K", value: Uint8Array): Uint8Array[] {
  const data = concat([value, new Uint8Array(1)]);
  const header = encodeHeader({
    name: encoder.encode("././@LongLink"),
    mode: 0o644,
    uid: 0,
    gid: 0,
    size: data.length,
    mtime: 0,
    typeflag,
    linkname: new Uint8Array(0),
    uname: new Uint8Array(0),
    gname: new Uint8Array(0),
    devmajor: 0,
    devminor: 0,
  });
  return [header, data, padding(data.length)];
}

/** The header blocks (PAX/GNU records included) of one entry, and its content size. */
export function encodeEntryHeader(
  entry: TarEntry,
  contentSize: number,
  options: TarWriterOptions = {},
): Uint8Array {
  const longNames = options.longNames ?? "pax";
  let path = entry.path;
  if (entry.type === "dir" && !path.endsWith("/") && entry.typeflag === undefined) path += "/";
  const pathBytes = bytesOf(path);
  const linkBytes =
    entry.type === "symlink" || entry.type === "hardlink" ? bytesOf(entry.target) : new Uint8Array(0);
  const mtime = entry.mtime ?? DEFAULT_MTIME;
  const uid = entry.uid ?? 0;
  const gid = entry.gid ?? 0;
  const pax: Array<[string, Uint8Array]> = [];
  const before: Uint8Array[] = [];

  let split = splitUstarName(pathBytes);
  if (!split) {
    if (longNames === "gnu") before.push(...gnuLongRecord("L", pathBytes));
    else pax.push(["path", pathBytes]);
    split = { prefix: new Uint8Array(0), name: pathBytes.subarray(0, 100) };
  }
  if (linkBytes.length > 100) {
    if (longNames === "gnu") before.push(...gnuLongRecord("K", linkBytes));
    else pax.push(["linkpath", linkBytes]);
  }
  if (!octal(uid, 8)) pax.push(["uid", encoder.encode(String(uid))]);
  if (!octal(gid, 8)) pax.push(["gid", encoder.encode(String(gid))]);
  if (!octal(contentSize, 12)) pax.push(["size", encoder.encode(String(contentSize))]);
  if (!Number.isInteger(mtime) || !octal(mtime, 12)) pax.push(["mtime", encoder.encode(String(mtime))]);
  for (const [name, value] of Object.entries(entry.xattrs ?? {})) {
    pax.push([`SCHILY.xattr.${name}`, bytesOf(value)]);
  }
  for (const [key, value] of Object.entries(entry.pax ?? {})) pax.push([key, bytesOf(value)]);

  const header = encodeHeader({
    name: split.name,
    prefix: split.prefix,
    mode: entry.mode ?? DEFAULT_MODE[entry.type],
    uid,
    gid,
    size: contentSize,
    mtime: Number.isInteger(mtime) && mtime >= 0 ? mtime : Math.max(0, Math.floor(mtime)),
    typeflag: entry.typeflag ?? TYPEFLAG[entry.type],
    linkname: linkBytes.subarray(0, 100),
    uname: bytesOf(entry.uname ?? ""),
    gname: bytesOf(entry.gname ?? ""),
    devmajor: entry.type === "char" || entry.type === "block" ? entry.major : 0,
    devminor: entry.type === "char" || entry.type === "block" ? entry.minor : 0,
  });
  if (pax.length > 0) {
    const body = concat(pax.map(([key, value]) => paxRecord(key, value)));
    const paxName = concat([encoder.encode("PaxHeader/"), split.name]).subarray(0, 100);
    before.push(
      encodeHeader({
        name: paxName,
        mode: 0o644,
        uid: 0,
        gid: 0,
        size: body.length,
        mtime: 0,
        typeflag: "x",
        linkname: new Uint8Array(0),
        uname: new Uint8Array(0),
        gname: new Uint8Array(0),
        devmajor: 0,
        devminor: 0,
      }),
      body,
      padding(body.length),
    );
  }
  return concat([...before, header]);
}

function fileContent(entry: TarEntry): { size: number; bytes?: Uint8Array; chunks?: TarFileData } {
  if (entry.type !== "file" || entry.data === undefined) return { size: 0 };
  if (typeof entry.data === "string" || entry.data instanceof Uint8Array) {
    const bytes = bytesOf(entry.data);
    return { size: bytes.length, bytes };
  }
  return { size: entry.data.size, chunks: entry.data };
}

/** The end-of-archive marker: two zero blocks. */
export const END_OF_ARCHIVE = new Uint8Array(2 * BLOCK);

/** A whole archive in memory (small archives: tests, configs). Streamed file data is not allowed here. */
export function tarBytes(entries: Iterable<TarEntry>, options: TarWriterOptions = {}): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const entry of entries) {
    const content = fileContent(entry);
    if (content.chunks) throw new TypeError("tarBytes takes in-memory data only; use tarStream");
    parts.push(encodeEntryHeader(entry, content.size, options));
    if (content.bytes) parts.push(content.bytes, padding(content.size));
  }
  parts.push(END_OF_ARCHIVE);
  return concat(parts);
}

/** Yields the archive block by block; file contents are streamed and their declared size is checked. */
export async function* tarChunks(
  entries: Iterable<TarEntry> | AsyncIterable<TarEntry>,
  options: TarWriterOptions = {},
): AsyncGenerator<Uint8Array> {
  for await (const entry of entries) {
    const content = fileContent(entry);
    yield encodeEntryHeader(entry, content.size, options);
    if (content.bytes) {
      yield content.bytes;
    } else if (content.chunks && typeof content.chunks === "object" && "chunks" in content.chunks) {
      let written = 0;
      for await (const chunk of content.chunks.chunks) {
        written += chunk.length;
        if (written > content.size) break;
        yield chunk;
      }
      if (written !== content.size) {
        throw new Error(`tar entry ${entry.path}: declared ${content.size} bytes, got ${written}`);
      }
    }
    const pad = padding(content.size);
    if (pad.length > 0) yield pad;
  }
  yield END_OF_ARCHIVE;
}

/** The archive as a web stream. */
export function tarStream(
  entries: Iterable<TarEntry> | AsyncIterable<TarEntry>,
  options: TarWriterOptions = {},
): ReadableStream<Uint8Array> {
  const chunks = tarChunks(entries, options);
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const next = await chunks.next();
      if (next.done) controller.close();
      else controller.enqueue(next.value);
    },
    async cancel() {
      await chunks.return(undefined);
    },
  });
}

/** Gzip with a zero mtime and no file name in the header, so the output is reproducible. */
export function gzipBytes(data: Uint8Array, level = 6): Uint8Array {
  return new Uint8Array(zlib.gzipSync(data, { level }));
}

export function zstdBytes(data: Uint8Array, level = 3): Uint8Array {
  return new Uint8Array(
    zlib.zstdCompressSync(data, { params: { [zlib.constants.ZSTD_c_compressionLevel]: level } }),
  );
}

/** Compresses a stream (gzip header with mtime 0, like gzipBytes). */
export function compressStream(
  input: ReadableStream<Uint8Array>,
  compression: "gzip" | "zstd",
): ReadableStream<Uint8Array> {
  const transform = compression === "gzip" ? zlib.createGzip() : zlib.createZstdCompress();
  (async () => {
    try {
      for await (const chunk of input) {
        if (!transform.write(chunk)) await new Promise((resolve) => transform.once("drain", resolve));
      }
      transform.end();
    } catch (err) {
      transform.destroy(err as Error);
    }
  })();
  const output = transform[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const next = await output.next();
      if (next.done) controller.close();
      else controller.enqueue(new Uint8Array(next.value as Buffer));
    },
    cancel(reason) {
      transform.destroy(reason instanceof Error ? reason : undefined);
    },
  });
}
