import { closeSync } from "node:fs";
import { Errno, Filetype } from "./constants.ts";
import { fail } from "./errors.ts";
import type { DirLocation } from "./sandbox.ts";

/** Where a stdio stream goes when it is not a host fd. */
export type StdioSink = (chunk: Uint8Array) => void;

interface EntryBase {
  filetype: number;
  rightsBase: bigint;
  rightsInheriting: bigint;
  fdflags: number;
}

/** A regular file or other openable non-directory; the position is ours because node:fs has no lseek. */
export interface FileEntry extends EntryBase {
  kind: "file";
  hostFd: number;
  position: number;
}

export interface DirEntry extends EntryBase {
  kind: "dir";
  hostFd: number;
  location: DirLocation;
  readonly: boolean;
  /** Set for preopens: the name fd_prestat_dir_name reports. */
  guestPath?: string;
  /** Listing cached at cookie 0 so cookies stay stable across the fd_readdir calls of one scan. */
  listing?: DirListingEntry[];
}

export interface DirListingEntry {
  name: Uint8Array;
  ino: bigint;
  filetype: number;
}

/** stdin/stdout/stderr: a caller-owned host fd (never closed by us), a sink, or nothing. */
export interface StdioEntry extends EntryBase {
  kind: "stdio";
  hostFd?: number;
  sink?: StdioSink;
}

/** A socket the host handed in (or one accepted from it). Listening sockets carry SOCK_ACCEPT. */
export interface SocketEntry extends EntryBase {
  kind: "socket";
  hostFd: number;
  /** Accepted sockets are ours to close; the preopened listener belongs to the caller. */
  owned: boolean;
}

export type FdEntry = FileEntry | DirEntry | StdioEntry | SocketEntry;

/** The guest's fd numbers. Lowest free number first, as POSIX does, so guests that assume it keep working. */
export class FdTable {
  readonly #entries = new Map<number, FdEntry>();
  readonly #maxFds: number;

  constructor(maxFds: number) {
    this.#maxFds = maxFds;
  }

  get size(): number {
    return this.#entries.size;
  }

  set(fd: number, entry: FdEntry): void {
    this.#entries.set(fd, entry);
  }

  add(entry: FdEntry): number {
    if (this.#entries.size >= this.#maxFds) {
      releaseHost(entry);
      fail(Errno.NFILE);
    }
    let fd = 0;
    while (this.#entries.has(fd)) fd++;
    this.#entries.set(fd, entry);
    return fd;
  }

  /** The entry, after checking it holds every right in `needed` (ENOTCAPABLE otherwise, EBADF if absent). */
  get(fd: number, needed = 0n): FdEntry {
    const entry = this.#entries.get(fd);
    if (entry === undefined) fail(Errno.BADF);
    if ((entry.rightsBase & needed) !== needed) fail(Errno.NOTCAPABLE);
    return entry;
  }

  getDir(fd: number, needed = 0n): DirEntry {
    const entry = this.get(fd);
    if (entry.kind !== "dir") fail(Errno.NOTDIR);
    if ((entry.rightsBase & needed) !== needed) fail(Errno.NOTCAPABLE);
    return entry;
  }

  close(fd: number): void {
    const entry = this.get(fd);
    this.#entries.delete(fd);
    releaseHost(entry);
  }

  renumber(from: number, to: number): void {
    const entry = this.get(from);
    if (from === to) return;
    this.get(to);
    this.close(to);
    this.#entries.delete(from);
    this.#entries.set(to, entry);
  }

  closeAll(): void {
    for (const fd of [...this.#entries.keys()]) this.close(fd);
  }
}

function releaseHost(entry: FdEntry): void {
  const owned = entry.kind === "file" || entry.kind === "dir" || (entry.kind === "socket" && entry.owned);
  if (!owned) return;
  try {
    closeSync(entry.hostFd);
  } catch {
    // Close errors are not reportable to a guest that already dropped the fd.
  }
}

/** Host stat mode bits to a preview 1 filetype. */
export function filetypeOf(stat: {
  isFile(): boolean;
  isDirectory(): boolean;
  isSymbolicLink(): boolean;
  isCharacterDevice(): boolean;
  isBlockDevice(): boolean;
  isSocket(): boolean;
}): number {
  if (stat.isFile()) return Filetype.REGULAR_FILE;
  if (stat.isDirectory()) return Filetype.DIRECTORY;
  if (stat.isSymbolicLink()) return Filetype.SYMBOLIC_LINK;
  if (stat.isCharacterDevice()) return Filetype.CHARACTER_DEVICE;
  if (stat.isBlockDevice()) return Filetype.BLOCK_DEVICE;
  if (stat.isSocket()) return Filetype.SOCKET_STREAM;
  return Filetype.UNKNOWN;
}
