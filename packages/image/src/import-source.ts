import { lstatSync, realpathSync } from "node:fs";
import { join, posix } from "node:path";
import { MagikError } from "@magikrun/spec";

/**
 * Read access to the files of an image layout or archive, whether a directory or a tar file. Member names come
 * from untrusted documents (docker's manifest.json), so they are checked before they touch the filesystem.
 */
export interface ImportSource {
  readonly description: string;
  has(name: string): boolean;
  size(name: string): number;
  /** Whole file, refused past `max` bytes. */
  read(name: string, max: number, limit: string): Promise<Uint8Array>;
  stream(name: string): ReadableStream<Uint8Array>;
  /** First bytes, to sniff compression. */
  head(name: string, length: number): Promise<Uint8Array>;
}

function cleanName(name: string, where: string): string {
  const normalized = posix.normalize(name.replace(/^\.\/+/, ""));
  if (
    normalized.startsWith("/") ||
    normalized === ".." ||
    normalized.startsWith("../") ||
    name.includes("\0")
  ) {
    throw new MagikError(
      "PathTraversal",
      `${where} names a file outside the image: ${JSON.stringify(name)}`,
      {
        details: { name, source: where },
      },
    );
  }
  return normalized;
}

function missing(name: string, where: string): MagikError {
  return new MagikError("InvalidInput", `${where} has no ${name}`, {
    details: { name, source: where },
    hint: "Images are imported from an OCI image layout (dir or tar) or a `docker save` archive.",
  });
}

function tooLarge(name: string, size: number, max: number, limit: string): MagikError {
  return new MagikError("ImageTooLarge", `${name} is ${size} bytes, more than ${limit} (${max})`, {
    details: { name, size, max, limit },
  });
}

/** A directory (an OCI image layout). Symlinks inside it are not followed. */
export function directorySource(dir: string): ImportSource {
  const realDir = realpathSync(dir);
  const fileOf = (name: string) => {
    const path = join(dir, cleanName(name, dir));
    const st = lstatSync(path, { throwIfNoEntry: false });
    if (!st?.isFile()) throw missing(name, dir);
    // A symlinked directory on the way must not lead out of the layout.
    const real = realpathSync(path);
    if (!real.startsWith(`${realDir}/`)) {
      throw new MagikError("PathTraversal", `${name} in ${dir} resolves outside it`, {
        details: { name, source: dir, resolved: real },
      });
    }
    return { path, size: st.size };
  };
  return {
    description: dir,
    has: (name) => {
      try {
        fileOf(name);
        return true;
      } catch {
        return false;
      }
    },
    size: (name) => fileOf(name).size,
    async read(name, max, limit) {
      const { path, size } = fileOf(name);
      if (size > max) throw tooLarge(name, size, max, limit);
      return Bun.file(path).bytes();
    },
    stream: (name) => Bun.file(fileOf(name).path).stream(),
    head: async (name, length) => Bun.file(fileOf(name).path).slice(0, length).bytes(),
  };
}

interface TarMember {
  offset: number;
  size: number;
  type: "file" | "symlink" | "hardlink" | "other";
  link: string;
}

function field(block: Uint8Array, start: number, length: number): string {
  const raw = block.subarray(start, start + length);
  const end = raw.indexOf(0);
  return new TextDecoder().decode(end < 0 ? raw : raw.subarray(0, end));
}

function numeric(block: Uint8Array, start: number, length: number): number {
  if ((block[start]! & 0x80) !== 0) {
    let value = 0;
    for (let i = start + 1; i < start + length; i++) value = value * 256 + block[i]!;
    return value;
  }
  const text = field(block, start, length).trim();
  return text ? Number.parseInt(text, 8) : 0;
}

function paxPath(data: Uint8Array): string | undefined {
  const text = new TextDecoder().decode(data);
  for (const line of text.split("\n")) {
    const m = /^\d+ path=(.*)$/.exec(line);
    if (m) return m[1];
  }
  return undefined;
}

const MAX_MEMBERS = 100_000;

/**
 * A tar archive read in place: one pass over the headers records where each member's data is, then members are
 * streamed straight from the file. Understands ustar prefixes, GNU long names and PAX paths; follows symlinked and
 * hardlinked members (docker save links duplicate layers) within the archive only.
 */
export async function tarFileSource(path: string): Promise<ImportSource> {
  const file = Bun.file(path);
  const total = file.size;
  const members = new Map<string, TarMember>();
  let offset = 0;
  let longName: string | undefined;
  while (offset + 512 <= total) {
    const block = await file.slice(offset, offset + 512).bytes();
    if (block.every((b) => b === 0)) break;
    const size = numeric(block, 124, 12);
    const typeflag = String.fromCharCode(block[156]!);
    const dataOffset = offset + 512;
    const next = dataOffset + Math.ceil(size / 512) * 512;
    if (Number.isNaN(size) || next > total + 1024) {
      throw new MagikError("InvalidInput", `${path} is not a tar archive (bad header at byte ${offset})`, {
        details: { path, offset },
      });
    }
    if (typeflag === "L" || typeflag === "x") {
      const data = await file.slice(dataOffset, dataOffset + size).bytes();
      longName = typeflag === "L" ? field(data, 0, data.length) : (paxPath(data) ?? longName);
    } else if (typeflag !== "g") {
      const prefix = field(block, 345, 155);
      const rawName = longName ?? (prefix ? `${prefix}/${field(block, 0, 100)}` : field(block, 0, 100));
      longName = undefined;
      const type =
        typeflag === "0" || typeflag === "\0"
          ? "file"
          : typeflag === "2"
            ? "symlink"
            : typeflag === "1"
              ? "hardlink"
              : "other";
      const name = posix.normalize(rawName.replace(/^\.?\/+/, "")).replace(/\/$/, "");
      members.set(name, { offset: dataOffset, size, type, link: field(block, 157, 100) });
      if (members.size > MAX_MEMBERS) {
        throw new MagikError("ImageTooLarge", `${path} has more than ${MAX_MEMBERS} members`, {
          details: { path },
        });
      }
    }
    offset = next;
  }
  const resolve = (name: string): TarMember => {
    let current = cleanName(name, path);
    for (let hops = 0; hops < 8; hops++) {
      const member = members.get(current);
      if (!member) break;
      if (member.type === "file") return member;
      if (member.type === "symlink")
        current = cleanName(posix.join(posix.dirname(current), member.link), path);
      else if (member.type === "hardlink") current = cleanName(member.link, path);
      else break;
    }
    throw missing(name, path);
  };
  return {
    description: path,
    has: (name) => {
      try {
        resolve(name);
        return true;
      } catch {
        return false;
      }
    },
    size: (name) => resolve(name).size,
    async read(name, max, limit) {
      const m = resolve(name);
      if (m.size > max) throw tooLarge(name, m.size, max, limit);
      return file.slice(m.offset, m.offset + m.size).bytes();
    },
    stream: (name) => {
      const m = resolve(name);
      return file.slice(m.offset, m.offset + m.size).stream();
    },
    head: async (name, length) => {
      const m = resolve(name);
      return file.slice(m.offset, m.offset + Math.min(length, m.size)).bytes();
    },
  };
}
