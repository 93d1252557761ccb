import { type BigIntStats, fstatSync, futimesSync, lstatSync, lutimesSync } from "node:fs";
import { Errno, Fstflags, SIZE_FILESTAT } from "./constants.ts";
import { fail } from "./errors.ts";
import { filetypeOf } from "./fd-table.ts";
import { libc, UTIME_NOW, UTIME_OMIT, wasiErrnoFromLinux } from "./libc.ts";
import type { GuestView } from "./memory.ts";

export function writeFilestat(mem: GuestView, ptr: number, stat: BigIntStats, filetype?: number): void {
  mem.slice(ptr, SIZE_FILESTAT).fill(0);
  mem.setU64(ptr, stat.dev);
  mem.setU64(ptr + 8, stat.ino);
  mem.setU8(ptr + 16, filetype ?? filetypeOf(stat));
  mem.setU64(ptr + 24, stat.nlink);
  mem.setU64(ptr + 32, stat.size);
  mem.setU64(ptr + 40, stat.atimeNs);
  mem.setU64(ptr + 48, stat.mtimeNs);
  mem.setU64(ptr + 56, stat.ctimeNs);
}

export function fstatBig(hostFd: number): BigIntStats {
  return fstatSync(hostFd, { bigint: true });
}

/**
 * The access and modification times (seconds, as node:fs takes them) to set for an fstflags request, keeping
 * whichever time the flags leave alone. Setting a time both explicitly and to "now" is EINVAL, as in POSIX.
 */
export function timesToSet(
  current: () => BigIntStats,
  atim: bigint,
  mtim: bigint,
  fstflags: number,
): [number, number] {
  if ((fstflags & ~0xf) !== 0) fail(Errno.INVAL);
  const setA = (fstflags & Fstflags.ATIM) !== 0;
  const nowA = (fstflags & Fstflags.ATIM_NOW) !== 0;
  const setM = (fstflags & Fstflags.MTIM) !== 0;
  const nowM = (fstflags & Fstflags.MTIM_NOW) !== 0;
  if ((setA && nowA) || (setM && nowM)) fail(Errno.INVAL);
  const now = Date.now() / 1000;
  const keep = !(setA || nowA) || !(setM || nowM) ? current() : undefined;
  const seconds = (ns: bigint): number => Number(ns / 1000n) / 1e6;
  const a = setA ? seconds(atim) : nowA ? now : seconds(keep!.atimeNs);
  const m = setM ? seconds(mtim) : nowM ? now : seconds(keep!.mtimeNs);
  return [a, m];
}

/** Where times are set: an open host fd, or a host path whose last component is not followed. */
export type TimesTarget = { fd: number } | { path: string };

/**
 * Sets access/modification times for an fstflags request. libc's futimens/utimensat keep nanoseconds and let
 * the kernel apply "now" and "omit"; node:fs (the fallback) passes seconds as doubles and loses sub-µs digits.
 */
export function setTimes(target: TimesTarget, atim: bigint, mtim: bigint, fstflags: number): void {
  const c = libc();
  if (c === null) {
    const current = () => ("fd" in target ? fstatBig(target.fd) : lstatSync(target.path, { bigint: true }));
    const [a, m] = timesToSet(current, atim, mtim, fstflags);
    if ("fd" in target) futimesSync(target.fd, a, m);
    else lutimesSync(target.path, a, m);
    return;
  }
  const times = timespecs(atim, mtim, fstflags);
  const rc = "fd" in target ? c.futimens(target.fd, times) : c.lutimensat(target.path, times);
  if (rc < 0) fail(wasiErrnoFromLinux(c.errno()));
}

/** timespec[2] for futimens/utimensat from an fstflags request; UTIME_NOW/UTIME_OMIT let the kernel do the rest. */
export function timespecs(atim: bigint, mtim: bigint, fstflags: number): BigInt64Array {
  if ((fstflags & ~0xf) !== 0) fail(Errno.INVAL);
  const one = (set: boolean, now: boolean, ns: bigint): [bigint, bigint] => {
    if (set && now) fail(Errno.INVAL);
    if (now) return [0n, UTIME_NOW];
    if (!set) return [0n, UTIME_OMIT];
    return [ns / 1_000_000_000n, ns % 1_000_000_000n];
  };
  return new BigInt64Array([
    ...one((fstflags & Fstflags.ATIM) !== 0, (fstflags & Fstflags.ATIM_NOW) !== 0, atim),
    ...one((fstflags & Fstflags.MTIM) !== 0, (fstflags & Fstflags.MTIM_NOW) !== 0, mtim),
  ]);
}
