import { MagikError } from "@magikrun/spec/errors";

const UNITS: Record<string, number> = {
  "": 1,
  k: 1024,
  m: 1024 ** 2,
  g: 1024 ** 3,
  t: 1024 ** 4,
  p: 1024 ** 5,
};

export interface SizeOptions {
  /** Accept 0 (runc update reads it as "leave alone"); bundle flags want a real limit. */
  allowZero?: boolean;
  /** Accept a fraction such as 1.5g, as runc does. */
  allowFraction?: boolean;
}

/**
 * A memory size as runc and docker read it (go-units RAMInBytes): a number, an optional space, then k, m, g, t
 * or p with an optional "i" and "b" (64m, 64MB, 64MiB), any case, base 1024; bare digits are bytes.
 */
export function parseSize(value: string, flag: string, options: SizeOptions = {}): number {
  const match = /^(\d+(?:\.\d+)?) ?([kmgtp]?)(i?b)?$/i.exec(value.trim());
  let bytes = Number.NaN;
  if (match && (options.allowFraction || !match[1]!.includes("."))) {
    bytes = Math.trunc(Number(match[1]) * UNITS[match[2]!.toLowerCase()]!);
  }
  if (!Number.isSafeInteger(bytes) || bytes < 0 || (bytes === 0 && !options.allowZero)) {
    throw new MagikError("InvalidInput", `${flag} must be a size like 64m or 1g, got ${value}`, {
      details: { flag, value },
      hint: "Sizes are bytes, or a number with k, m, g or t (base 1024), e.g. 512k, 64m, 1g.",
    });
  }
  return bytes;
}
