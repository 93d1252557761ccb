import type { Descriptor } from "@magikrun/spec";
import { isMagikError } from "@magikrun/spec";
import { describe, expect, it } from "vitest";
import { formatPlatform, hostPlatform, isWasmPlatform, parsePlatform, selectPlatform } from "./platform.ts";

const d = (architecture: string, variant?: string, os = "linux"): Descriptor => ({
  mediaType: "application/vnd.oci.image.manifest.v1+json",
  digest: `sha256:${architecture.padEnd(64, "0").replace(/[^0-9a-f]/g, "0")}`,
  size: 1,
  platform: { os, architecture, ...(variant ? { variant } : {}) },
});

describe("platforms", () => {
  it("parses and formats", () => {
    expect(parsePlatform("linux/arm64/v8")).toEqual({ os: "linux", architecture: "arm64", variant: "v8" });
    expect(parsePlatform("linux/x86_64")).toEqual({ os: "linux", architecture: "amd64" });
    expect(formatPlatform({ os: "linux", architecture: "arm", variant: "v7" })).toBe("linux/arm/v7");
    for (const bad of ["linux", "linux/", "Linux/AMD64", "a/b/c/d"]) {
      expect(() => parsePlatform(bad)).toThrow(/invalid platform/);
    }
    expect(hostPlatform().os).toBe("linux");
  });

  it("selects by os, architecture and variant", () => {
    const manifests = [
      d("unknown", undefined, "unknown"),
      d("arm", "v6"),
      d("arm", "v7"),
      d("arm64"),
      d("amd64"),
    ];
    expect(selectPlatform(manifests, { os: "linux", architecture: "amd64" })).toBe(manifests[4]);
    expect(selectPlatform(manifests, { os: "linux", architecture: "arm", variant: "v7" })).toBe(manifests[2]);
    expect(selectPlatform(manifests, { os: "linux", architecture: "arm" })).toBe(manifests[1]);
    // arm64 without a variant is v8.
    expect(selectPlatform(manifests, { os: "linux", architecture: "arm64", variant: "v8" })).toBe(
      manifests[3],
    );
    let err: unknown;
    try {
      selectPlatform(manifests, { os: "linux", architecture: "arm", variant: "v5" });
    } catch (e) {
      err = e;
    }
    expect(isMagikError(err, "ImageNotFound")).toBe(true);
  });

  it("takes a wasm entry only as the rule allows: exact never, fallback when the host has none, prefer first", () => {
    const amd64 = { os: "linux", architecture: "amd64" };
    const both = [d("wasm", undefined, "wasi"), d("amd64"), d("wasm", undefined, "wasip1")];
    const wasmOnly = [d("unknown", undefined, "unknown"), d("wasm", undefined, "wasi")];
    expect(isWasmPlatform(both[0]!.platform)).toBe(true);
    expect(isWasmPlatform(both[1]!.platform)).toBe(false);
    expect(selectPlatform(both, amd64)).toBe(both[1]);
    expect(selectPlatform(both, amd64, "fallback")).toBe(both[1]);
    // wasip1 before wasi, whatever the index order.
    expect(selectPlatform(both, amd64, "prefer")).toBe(both[2]);
    expect(selectPlatform(wasmOnly, amd64, "fallback")).toBe(wasmOnly[1]);
    expect(selectPlatform(wasmOnly, amd64, "prefer")).toBe(wasmOnly[1]);
    expect(selectPlatform([d("amd64")], amd64, "prefer").platform?.architecture).toBe("amd64");
    let err: unknown;
    try {
      selectPlatform(wasmOnly, amd64);
    } catch (e) {
      err = e;
    }
    expect(isMagikError(err, "ImageNotFound")).toBe(true);
    expect((err as { details: unknown }).details).toEqual({
      platform: "linux/amd64",
      available: ["unknown/unknown", "wasi/wasm"],
    });
  });
});
