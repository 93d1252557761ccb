import { MagikError } from "@magikrun/spec/errors";

/** mount(2) flags, from <sys/mount.h>. */
export const MS = {
  RDONLY: 1,
  NOSUID: 2,
  NODEV: 4,
  NOEXEC: 8,
  SYNCHRONOUS: 16,
  REMOUNT: 32,
  MANDLOCK: 64,
  DIRSYNC: 128,
  NOSYMFOLLOW: 256,
  NOATIME: 1024,
  NODIRATIME: 2048,
  BIND: 4096,
  MOVE: 8192,
  REC: 16384,
  UNBINDABLE: 1 << 17,
  PRIVATE: 1 << 18,
  SLAVE: 1 << 19,
  SHARED: 1 << 20,
  RELATIME: 1 << 21,
  STRICTATIME: 1 << 24,
  LAZYTIME: 1 << 25,
} as const;

/** Options that set (or with `clear`, unset) a flag; the table runc and crun share. */
const FLAG_OPTIONS: Record<string, { flag: number; clear?: true }> = {
  ro: { flag: MS.RDONLY },
  rw: { flag: MS.RDONLY, clear: true },
  nosuid: { flag: MS.NOSUID },
  suid: { flag: MS.NOSUID, clear: true },
  nodev: { flag: MS.NODEV },
  dev: { flag: MS.NODEV, clear: true },
  noexec: { flag: MS.NOEXEC },
  exec: { flag: MS.NOEXEC, clear: true },
  sync: { flag: MS.SYNCHRONOUS },
  async: { flag: MS.SYNCHRONOUS, clear: true },
  dirsync: { flag: MS.DIRSYNC },
  remount: { flag: MS.REMOUNT },
  mand: { flag: MS.MANDLOCK },
  nomand: { flag: MS.MANDLOCK, clear: true },
  noatime: { flag: MS.NOATIME },
  atime: { flag: MS.NOATIME, clear: true },
  nodiratime: { flag: MS.NODIRATIME },
  diratime: { flag: MS.NODIRATIME, clear: true },
  relatime: { flag: MS.RELATIME },
  norelatime: { flag: MS.RELATIME, clear: true },
  strictatime: { flag: MS.STRICTATIME },
  nostrictatime: { flag: MS.STRICTATIME, clear: true },
  lazytime: { flag: MS.LAZYTIME },
  nolazytime: { flag: MS.LAZYTIME, clear: true },
  nosymfollow: { flag: MS.NOSYMFOLLOW },
  symfollow: { flag: MS.NOSYMFOLLOW, clear: true },
  bind: { flag: MS.BIND },
  rbind: { flag: MS.BIND | MS.REC },
};

export const PROPAGATION_OPTIONS: Record<string, number> = {
  private: MS.PRIVATE,
  rprivate: MS.PRIVATE | MS.REC,
  shared: MS.SHARED,
  rshared: MS.SHARED | MS.REC,
  slave: MS.SLAVE,
  rslave: MS.SLAVE | MS.REC,
  unbindable: MS.UNBINDABLE,
  runbindable: MS.UNBINDABLE | MS.REC,
};

/** Options runc accepts that change how it prepares a mount rather than the mount itself. */
const UNSUPPORTED_OPTIONS = new Set([
  "tmpcopyup",
  "idmap",
  "ridmap",
  "rro",
  "rrw",
  "rnosuid",
  "rnodev",
  "rnoexec",
]);

export interface ParsedMountOptions {
  flags: number;
  propagation: number;
  /** Comma-joined filesystem-specific options (mode=755, size=64k...). */
  data: string;
  isBind: boolean;
}

export function parseMountOptions(options: readonly string[] = [], destination = ""): ParsedMountOptions {
  let flags = 0;
  let propagation = 0;
  const data: string[] = [];
  for (const option of options) {
    const flag = FLAG_OPTIONS[option];
    if (flag) {
      flags = flag.clear ? flags & ~flag.flag : flags | flag.flag;
      continue;
    }
    const prop = PROPAGATION_OPTIONS[option];
    if (prop !== undefined) {
      propagation |= prop;
      continue;
    }
    if (UNSUPPORTED_OPTIONS.has(option)) {
      throw new MagikError("NotSupported", `mount option ${JSON.stringify(option)} is not supported`, {
        details: { option, destination },
        hint: "Remove the option from config.json's mounts; magikrun does not implement it yet.",
      });
    }
    data.push(option);
  }
  return { flags, propagation, data: data.join(","), isBind: (flags & MS.BIND) !== 0 };
}
