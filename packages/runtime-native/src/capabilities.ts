import { readFileSync } from "node:fs";
import { MagikError } from "@magikrun/spec/errors";
import type { Capabilities } from "@magikrun/spec/runtime-config";

/** Linux capabilities by number (linux/capability.h): the index is the capability's bit. */
export const CAPABILITY_NAMES = [
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_DAC_READ_SEARCH",
  "CAP_FOWNER",
  "CAP_FSETID",
  "CAP_KILL",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETPCAP",
  "CAP_LINUX_IMMUTABLE",
  "CAP_NET_BIND_SERVICE",
  "CAP_NET_BROADCAST",
  "CAP_NET_ADMIN",
  "CAP_NET_RAW",
  "CAP_IPC_LOCK",
  "CAP_IPC_OWNER",
  "CAP_SYS_MODULE",
  "CAP_SYS_RAWIO",
  "CAP_SYS_CHROOT",
  "CAP_SYS_PTRACE",
  "CAP_SYS_PACCT",
  "CAP_SYS_ADMIN",
  "CAP_SYS_BOOT",
  "CAP_SYS_NICE",
  "CAP_SYS_RESOURCE",
  "CAP_SYS_TIME",
  "CAP_SYS_TTY_CONFIG",
  "CAP_MKNOD",
  "CAP_LEASE",
  "CAP_AUDIT_WRITE",
  "CAP_AUDIT_CONTROL",
  "CAP_SETFCAP",
  "CAP_MAC_OVERRIDE",
  "CAP_MAC_ADMIN",
  "CAP_SYSLOG",
  "CAP_WAKE_ALARM",
  "CAP_BLOCK_SUSPEND",
  "CAP_AUDIT_READ",
  "CAP_PERFMON",
  "CAP_BPF",
  "CAP_CHECKPOINT_RESTORE",
] as const;

export type CapabilityName = (typeof CAPABILITY_NAMES)[number];

const NUMBERS: ReadonlyMap<string, number> = new Map(CAPABILITY_NAMES.map((name, i) => [name, i]));

/** The bit of a capability; unknown names are an InvalidInput error naming them. */
export function capabilityNumber(name: string): number {
  const n = NUMBERS.get(name);
  if (n === undefined) {
    throw new MagikError("InvalidInput", `unknown capability ${JSON.stringify(name)}`, {
      details: { field: "process.capabilities", value: name },
      hint: `Capabilities are names such as CAP_NET_BIND_SERVICE (CAP_CHOWN … ${CAPABILITY_NAMES.at(-1)}).`,
    });
  }
  return n;
}

/** The mask of a list of capability names (the form capset and /proc/<pid>/status use). */
export function capabilitySet(names: readonly string[]): bigint {
  let mask = 0n;
  for (const name of names) mask |= 1n << BigInt(capabilityNumber(name));
  return mask;
}

/** The names in a mask; bits above the table are reported as CAP_<number>. */
export function capabilityNames(mask: bigint): string[] {
  const names: string[] = [];
  for (let bit = 0; mask >> BigInt(bit) !== 0n; bit++) {
    if ((mask >> BigInt(bit)) & 1n) names.push(CAPABILITY_NAMES[bit] ?? `CAP_${bit}`);
  }
  return names;
}

let cachedLastCap: number | undefined;

/** The highest capability the running kernel knows (/proc/sys/kernel/cap_last_cap). */
export function lastCap(): number {
  if (cachedLastCap === undefined) {
    try {
      cachedLastCap = Number.parseInt(readFileSync("/proc/sys/kernel/cap_last_cap", "utf8"), 10);
    } catch {
      // Without /proc, assume a kernel as new as the table.
      cachedLastCap = CAPABILITY_NAMES.length - 1;
    }
  }
  return cachedLastCap;
}

const SETS = ["bounding", "effective", "inheritable", "permitted", "ambient"] as const;

/**
 * Removes capabilities the running kernel does not have (newer than its cap_last_cap), with one warning per
 * name, as runc does: a config written for a newer kernel still runs. Unknown names are still refused.
 */
export function dropUnavailableCapabilities(
  caps: Capabilities,
  last: number = lastCap(),
): { capabilities: Capabilities; warnings: string[] } {
  const dropped = new Set<string>();
  const out: Capabilities = { ...caps };
  for (const set of SETS) {
    const list = caps[set];
    if (list === undefined) continue;
    out[set] = list.filter((name) => {
      const keep = capabilityNumber(name) <= last;
      if (!keep) dropped.add(name);
      return keep;
    });
  }
  const warnings = [...dropped].map((name) => `capability ${name} is not supported by this kernel; ignored`);
  return { capabilities: out, warnings };
}

export interface CapabilityMasks {
  bounding: bigint;
  effective: bigint;
  inheritable: bigint;
  permitted: bigint;
  ambient: bigint;
}

/** The five sets as masks, for PR_CAPBSET_DROP, capset and PR_CAP_AMBIENT_RAISE. Absent sets are empty. */
export function capabilityMasks(caps: Capabilities | undefined): CapabilityMasks {
  return {
    bounding: capabilitySet(caps?.bounding ?? []),
    effective: capabilitySet(caps?.effective ?? []),
    inheritable: capabilitySet(caps?.inheritable ?? []),
    permitted: capabilitySet(caps?.permitted ?? []),
    ambient: capabilitySet(caps?.ambient ?? []),
  };
}
