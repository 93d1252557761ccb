import { MagikError } from "./errors.ts";

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** The security limits of the original design. Every one is enforced somewhere and crossed by a test. */
export const DEFAULT_LIMITS = Object.freeze({
  MAX_IMAGE_REF_LEN: 512,
  MAX_LAYER_SIZE: 512 * MiB,
  MAX_ROOTFS_SIZE: 4 * GiB,
  MAX_LAYERS: 128,
  MAX_FILES_PER_LAYER: 100_000,
  MAX_MANIFEST_SIZE: 1 * MiB,
  MAX_CONFIG_SIZE: 1 * MiB,
  MAX_CONTAINERS: 1024,
  MAX_CONTAINER_ID_LEN: 128,
  MAX_WASM_MODULE_SIZE: 256 * MiB,
  MAX_WASM_MEMORY_PAGES: 65_536,
  DEFAULT_WASM_FUEL: 1e9,
  MAX_VM_MEMORY_MIB: 4096,
  MAX_VCPUS: 8,
  DEFAULT_MEMORY_BYTES: 256 * MiB,
  MAX_MEMORY_BYTES: 8 * GiB,
  IMAGE_PULL_TIMEOUT_MS: 300_000,
  CONTAINER_START_TIMEOUT_MS: 60_000,
  DEFAULT_GRACE_PERIOD_MS: 30_000,
  EXEC_TIMEOUT_MS: 300_000,
  MAX_INFLIGHT_BLOBS: 256,
});

export type Limits = { readonly [K in keyof typeof DEFAULT_LIMITS]: number };
export type LimitName = keyof Limits;

/** Limits in force for one instance, with the names the caller changed so they can be reported. */
export interface ResolvedLimits extends Limits {
  readonly overridden: readonly LimitName[];
}

/**
 * Applies per-instance overrides. An override is never silent: unknown names and values that are not positive
 * finite integers are refused, and the result lists which limits differ from the defaults.
 */
export function resolveLimits(overrides: Partial<Record<string, number>> = {}): ResolvedLimits {
  const out: Record<string, number> = { ...DEFAULT_LIMITS };
  const overridden: LimitName[] = [];
  for (const [name, value] of Object.entries(overrides)) {
    if (value === undefined) continue;
    // Own keys only: `in` would accept Object.prototype members such as "toString" as limit names.
    if (!Object.hasOwn(DEFAULT_LIMITS, name)) {
      throw new MagikError("InvalidInput", `unknown limit ${JSON.stringify(name)}`, {
        details: { limit: name, known: Object.keys(DEFAULT_LIMITS) },
      });
    }
    if (!Number.isSafeInteger(value) || value <= 0) {
      throw new MagikError("InvalidInput", `limit ${name} must be a positive integer, got ${value}`, {
        details: { limit: name, value },
      });
    }
    out[name] = value;
    if (value !== DEFAULT_LIMITS[name as LimitName]) overridden.push(name as LimitName);
  }
  return Object.freeze({ ...(out as unknown as Limits), overridden: Object.freeze(overridden) });
}

/** Throws ResourceExhausted (or the given code) when `value` crosses `limit`. */
export function enforceLimit(
  name: LimitName,
  value: number,
  limits: Limits = DEFAULT_LIMITS,
  code: "ResourceExhausted" | "ImageTooLarge" | "InvalidInput" = "ResourceExhausted",
): void {
  const max = limits[name];
  if (value > max) {
    throw new MagikError(code, `${name} exceeded: ${value} > ${max}`, {
      details: { limit: name, max, value },
      hint: `Raise ${name} explicitly for this instance if this is intended.`,
    });
  }
}
