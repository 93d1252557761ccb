import { MagikError } from "@magikrun/spec/errors";

/** One value to write into a control file of the container's cgroup. */
export interface CgroupWrite {
  /** The OCI field the value comes from (e.g. "memory.swap"), for errors. */
  field: string;
  /** Controller the file belongs to, named as in the hierarchy that holds it (v1 "blkio", v2 "io"). */
  controller: string;
  /** Files to try in order; the first that exists is written (e.g. blkio.weight, then blkio.bfq.weight). */
  choices: { file: string; value: string }[];
}

export interface WritePlan {
  writes: CgroupWrite[];
  /** Settings accepted but not enforced (e.g. memory.kernel), for the caller to show. */
  warnings: string[];
}

export function write(field: string, controller: string, file: string, value: string | number): CgroupWrite {
  return { field, controller, choices: [{ file, value: String(value) }] };
}

export function invalid(field: string, value: unknown, why: string, hint?: string): MagikError {
  return new MagikError("InvalidInput", `linux.resources.${field} = ${JSON.stringify(value)}: ${why}`, {
    details: { field: `linux.resources.${field}`, value },
    ...(hint === undefined ? {} : { hint }),
  });
}

export function notSupported(field: string, value: unknown, why: string, hint: string): MagikError {
  return new MagikError("NotSupported", `linux.resources.${field}: ${why}`, {
    details: { field: `linux.resources.${field}`, value },
    hint,
  });
}

/**
 * OCI memory values: -1 is unlimited, 0 (or absent) leaves the setting alone, anything below -1 is refused.
 * Returns undefined for "leave alone", -1 for unlimited, else the byte count.
 */
export function memoryValue(field: string, value: number | undefined): number | undefined {
  if (value === undefined || value === 0) return undefined;
  if (value < -1) throw invalid(field, value, "must be -1 (unlimited) or a positive byte count");
  return value;
}

/** The total of memory+swap must cover memory alone (OCI `swap` is memory+swap, as in v1 memsw). */
export function checkSwapCoversLimit(limit: number | undefined, swap: number | undefined): void {
  if (limit !== undefined && swap !== undefined && limit > 0 && swap > 0 && swap < limit) {
    throw invalid(
      "memory.swap",
      swap,
      `memory+swap must be at least memory.limit (${limit})`,
      "OCI memory.swap is the total of memory and swap; set it >= memory.limit, or -1.",
    );
  }
}

export const HUGEPAGE_SIZE = /^[0-9]+[KMG]B$/;

export function deviceNumber(major: number, minor: number): string {
  return `${major}:${minor}`;
}
