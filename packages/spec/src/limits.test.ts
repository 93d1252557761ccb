import { describe, expect, it } from "vitest";
import { isMagikError } from "./errors.ts";
import { DEFAULT_LIMITS, enforceLimit, resolveLimits } from "./limits.ts";

describe("limits", () => {
  it("has the values of the original design", () => {
    expect(DEFAULT_LIMITS.MAX_IMAGE_REF_LEN).toBe(512);
    expect(DEFAULT_LIMITS.MAX_LAYER_SIZE).toBe(512 * 1024 * 1024);
    expect(DEFAULT_LIMITS.MAX_ROOTFS_SIZE).toBe(4 * 1024 ** 3);
    expect(DEFAULT_LIMITS.MAX_LAYERS).toBe(128);
    expect(DEFAULT_LIMITS.MAX_FILES_PER_LAYER).toBe(100_000);
    expect(DEFAULT_LIMITS.MAX_MANIFEST_SIZE).toBe(1024 * 1024);
    expect(DEFAULT_LIMITS.MAX_CONFIG_SIZE).toBe(1024 * 1024);
    expect(DEFAULT_LIMITS.MAX_CONTAINERS).toBe(1024);
    expect(DEFAULT_LIMITS.MAX_CONTAINER_ID_LEN).toBe(128);
    expect(DEFAULT_LIMITS.MAX_WASM_MODULE_SIZE).toBe(256 * 1024 * 1024);
    expect(DEFAULT_LIMITS.MAX_WASM_MEMORY_PAGES).toBe(65_536);
    expect(DEFAULT_LIMITS.DEFAULT_WASM_FUEL).toBe(1e9);
    expect(DEFAULT_LIMITS.MAX_VM_MEMORY_MIB).toBe(4096);
    expect(DEFAULT_LIMITS.MAX_VCPUS).toBe(8);
    expect(DEFAULT_LIMITS.DEFAULT_MEMORY_BYTES).toBe(256 * 1024 * 1024);
    expect(DEFAULT_LIMITS.MAX_MEMORY_BYTES).toBe(8 * 1024 ** 3);
    expect(DEFAULT_LIMITS.IMAGE_PULL_TIMEOUT_MS).toBe(300_000);
    expect(DEFAULT_LIMITS.CONTAINER_START_TIMEOUT_MS).toBe(60_000);
    expect(DEFAULT_LIMITS.DEFAULT_GRACE_PERIOD_MS).toBe(30_000);
    expect(DEFAULT_LIMITS.EXEC_TIMEOUT_MS).toBe(300_000);
    expect(DEFAULT_LIMITS.MAX_INFLIGHT_BLOBS).toBe(256);
    expect(Object.isFrozen(DEFAULT_LIMITS)).toBe(true);
  });

  it("reports overrides instead of applying them silently", () => {
    const limits = resolveLimits({ MAX_LAYERS: 4, MAX_VCPUS: 8 });
    expect(limits.MAX_LAYERS).toBe(4);
    expect(limits.overridden).toEqual(["MAX_LAYERS"]);
  });

  it("refuses unknown names and non-positive values", () => {
    expect(() => resolveLimits({ MAX_LAYRES: 4 })).toThrow(/unknown limit/);
    expect(() => resolveLimits({ toString: 4 })).toThrow(/unknown limit/);
    expect(() => resolveLimits({ MAX_LAYERS: 0 })).toThrow(/positive integer/);
    expect(() => resolveLimits({ MAX_LAYERS: 1.5 })).toThrow(/positive integer/);
  });

  it("enforceLimit throws once the value crosses the limit", () => {
    expect(() => enforceLimit("MAX_LAYERS", 128)).not.toThrow();
    try {
      enforceLimit("MAX_LAYERS", 129);
      expect.unreachable();
    } catch (err) {
      expect(isMagikError(err, "ResourceExhausted")).toBe(true);
      expect((err as { details: unknown }).details).toEqual({ limit: "MAX_LAYERS", max: 128, value: 129 });
    }
  });
});
