import { type BigIntStats, fstatSync } from "node:fs";
import { Errno, Fstflags, SIZE_FILESTAT } from "./constants.ts";
import { fail } from "./errors.ts";
import { filetypeOf } from "./fd-table.ts";
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
