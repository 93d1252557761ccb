import {
  type BigIntStats,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readlinkSync,
  renameSync,
  rmdirSync,
  symlinkSync,
  unlinkSync,
} from "node:fs";
import { hostPathOf } from "./sandbox.ts";
import { setTimes } from "./stat.ts";

/** A preopen's host directory: its real path and an fd on it that only the runtime holds. */
export interface FsRoot {
  readonly root: string;
  readonly rootFd: number;
}

/**
 * The host operations path calls need, addressed as components below a preopen root. Components never contain
 * "/", "." or ".." and symlinks in them were already expanded by the sandbox walk; an implementation must not
 * follow a symlink it meets (one appearing there now is a concurrent change by someone else).
 */
export interface HostFs {
  /** True when the kernel itself keeps every operation beneath the root (openat2 RESOLVE_BENEATH). */
  readonly confined: boolean;
  lstat(at: FsRoot, rel: readonly string[]): BigIntStats;
  readlink(at: FsRoot, rel: readonly string[]): Uint8Array;
  open(at: FsRoot, rel: readonly string[], flags: number, mode: number): number;
  mkdir(at: FsRoot, rel: readonly string[]): void;
  rmdir(at: FsRoot, rel: readonly string[]): void;
  unlink(at: FsRoot, rel: readonly string[]): void;
  rename(from: FsRoot, fromRel: readonly string[], to: FsRoot, toRel: readonly string[]): void;
  link(from: FsRoot, fromRel: readonly string[], to: FsRoot, toRel: readonly string[]): void;
  symlink(target: string, at: FsRoot, rel: readonly string[]): void;
  setTimes(at: FsRoot, rel: readonly string[], atim: bigint, mtim: bigint, fstflags: number): void;
}

/**
 * node:fs on full host paths: portable, but the kernel resolves each path again, so a directory swapped for a
 * symlink by another process between the walk and the call could redirect it (the TOCTOU window). Used only
 * where openat2 is unavailable.
 */
export const pathFs: HostFs = {
  confined: false,
  lstat: (at, rel) => lstatSync(hostPathOf(at.root, rel), { bigint: true }),
  readlink: (at, rel) => new Uint8Array(readlinkSync(hostPathOf(at.root, rel), { encoding: "buffer" })),
  open: (at, rel, flags, mode) => openSync(hostPathOf(at.root, rel), flags, mode),
  mkdir: (at, rel) => mkdirSync(hostPathOf(at.root, rel), 0o777),
  rmdir: (at, rel) => rmdirSync(hostPathOf(at.root, rel)),
  unlink: (at, rel) => unlinkSync(hostPathOf(at.root, rel)),
  rename: (from, fromRel, to, toRel) =>
    renameSync(hostPathOf(from.root, fromRel), hostPathOf(to.root, toRel)),
  link: (from, fromRel, to, toRel) => linkSync(hostPathOf(from.root, fromRel), hostPathOf(to.root, toRel)),
  symlink: (target, at, rel) => symlinkSync(target, hostPathOf(at.root, rel)),
  setTimes: (at, rel, atim, mtim, fstflags) =>
    setTimes({ path: hostPathOf(at.root, rel) }, atim, mtim, fstflags),
};
