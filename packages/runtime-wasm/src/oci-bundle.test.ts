import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { isMagikError, type OciBundle } from "@magikrun/spec";
import { afterAll, describe, expect, it } from "vitest";
import { WASM_ANNOTATIONS, wasmBundleFromOci } from "./oci-bundle.ts";
import { Scratch } from "./testing/fixtures.ts";

const scratch = new Scratch();
afterAll(() => scratch.cleanup());

let n = 0;
function ociBundle(
  program: string,
  files: Record<string, Uint8Array | string>,
  extra: Record<string, unknown> = {},
) {
  const path = scratch.path(`b${n++}`);
  const rootfs = join(path, "rootfs");
  mkdirSync(join(rootfs, "app"), { recursive: true });
  for (const [name, content] of Object.entries(files)) writeFileSync(join(rootfs, name), content);
  const config = {
    ociVersion: "1.2.0",
    process: { args: [program, "--flag"], env: ["A=1"], cwd: "/app" },
    root: { path: "rootfs", readonly: true },
    ...extra,
  } as unknown as OciBundle["config"];
  return { bundle: { kind: "oci", path, config } satisfies OciBundle, rootfs };
}

const WASM = new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]);
const ELF = new Uint8Array([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]);

describe("wasmBundleFromOci", () => {
  it("turns a bundle whose program is a module into a wasm bundle with the rootfs preopened", () => {
    const { bundle, rootfs } = ociBundle("/app/main.wasm", { "app/main.wasm": WASM });
    expect(wasmBundleFromOci(bundle)).toEqual({
      kind: "wasm",
      path: bundle.path,
      modulePath: join(rootfs, "app/main.wasm"),
      args: ["/app/main.wasm", "--flag"],
      env: ["A=1"],
      preopens: [{ guestPath: "/", hostPath: rootfs, readonly: true }],
    });
    // relative to process.cwd
    expect(wasmBundleFromOci(ociBundle("main.wasm", { "app/main.wasm": WASM }).bundle)?.kind).toBe("wasm");
  });

  it("leaves native bundles alone", () => {
    expect(wasmBundleFromOci(ociBundle("/app/tool", { "app/tool": ELF }).bundle)).toBeUndefined();
    expect(wasmBundleFromOci(ociBundle("/app/missing", {}).bundle)).toBeUndefined();
  });

  it("reads the wasm annotations: the variant and the limits", () => {
    const annotations = {
      [WASM_ANNOTATIONS.variant]: "compat-smart",
      [WASM_ANNOTATIONS.fuel]: "5000",
      [WASM_ANNOTATIONS.maxMemoryPages]: "32",
      [WASM_ANNOTATIONS.timeoutMs]: "250",
    };
    const { bundle } = ociBundle("/app/mod", { "app/mod": "not yet a module" }, { annotations });
    expect(wasmBundleFromOci(bundle)).toMatchObject({ fuel: 5000, maxMemoryPages: 32, timeoutMs: 250 });
    const bad = ociBundle(
      "/app/m.wasm",
      { "app/m.wasm": WASM },
      { annotations: { [WASM_ANNOTATIONS.fuel]: "-3" } },
    );
    expect(() => wasmBundleFromOci(bad.bundle)).toThrowError(/must be a positive integer/);
  });

  it("refuses a module that resolves outside the rootfs", () => {
    const outside = scratch.path("outside.wasm");
    writeFileSync(outside, WASM);
    const { bundle, rootfs } = ociBundle("/app/escape.wasm", {});
    symlinkSync(outside, join(rootfs, "app/escape.wasm"));
    let error: unknown;
    try {
      wasmBundleFromOci(bundle);
    } catch (err) {
      error = err;
    }
    expect(isMagikError(error, "PathTraversal")).toBe(true);
  });
});
