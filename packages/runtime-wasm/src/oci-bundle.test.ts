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

  it("resolves symlinks as inside the container: absolute targets from the rootfs, .. stopping at it", () => {
    const outside = scratch.path("outside.wasm");
    writeFileSync(outside, WASM);
    const { bundle, rootfs } = ociBundle("/app/abs.wasm", {});
    mkdirSync(join(rootfs, "opt"));
    writeFileSync(join(rootfs, "opt/real.wasm"), WASM);
    symlinkSync("/opt/real.wasm", join(rootfs, "app/abs.wasm"));
    symlinkSync("../../../../opt/real.wasm", join(rootfs, "app/up.wasm"));
    symlinkSync(outside, join(rootfs, "app/escape.wasm"));
    symlinkSync("loop.wasm", join(rootfs, "app/loop.wasm"));
    const program = (name: string) => ({
      ...bundle,
      config: { ...bundle.config, process: { ...bundle.config.process!, args: [name] } },
    });
    const real = join(rootfs, "opt/real.wasm");
    expect(wasmBundleFromOci(bundle)?.modulePath).toBe(real);
    expect(wasmBundleFromOci(program("up.wasm"))?.modulePath).toBe(real);
    // the host's file of that name is never the module: inside the container the link leads nowhere
    expect(wasmBundleFromOci(program("/app/escape.wasm"))).toBeUndefined();
    expect(wasmBundleFromOci(program("/app/loop.wasm"))).toBeUndefined();
    expect(wasmBundleFromOci(program("/opt/real.wasm/not-a-dir"))).toBeUndefined();
  });
});

describe("wasmBundleFromOci: mounts and the rootfs preopen", () => {
  it("preopens bind mounts of directories at their destinations, after the rootfs, ro from the options", () => {
    const data = scratch.path("data");
    const logs = scratch.path("logs");
    mkdirSync(data, { recursive: true });
    mkdirSync(logs, { recursive: true });
    const hosts = scratch.path("hosts");
    writeFileSync(hosts, "127.0.0.1 localhost\n");
    const mounts = [
      { destination: "/proc", type: "proc", source: "proc" },
      { destination: "/data", type: "bind", source: data, options: ["rbind", "rw", "ro"] },
      // runc's other spelling of a bind: the option alone
      { destination: "/var/log", source: logs, options: ["bind"] },
      // a file has no WASI preopen: left out, as before
      { destination: "/etc/hosts", type: "bind", source: hosts, options: ["rbind", "ro"] },
      { destination: "/tmp", type: "tmpfs", source: "tmpfs" },
    ];
    const { bundle, rootfs } = ociBundle("/app/main.wasm", { "app/main.wasm": WASM }, { mounts });
    expect(wasmBundleFromOci(bundle)?.preopens).toEqual([
      { guestPath: "/", hostPath: rootfs, readonly: true },
      { guestPath: "/data", hostPath: data, readonly: true },
      { guestPath: "/var/log", hostPath: logs },
    ]);
  });

  it("takes a relative source from the bundle directory and keeps a missing one for the runtime to report", () => {
    const { bundle } = ociBundle(
      "/app/main.wasm",
      { "app/main.wasm": WASM },
      {
        mounts: [
          { destination: "/cache", type: "bind", source: "rootfs/app", options: ["rbind"] },
          { destination: "/gone", type: "bind", source: "/nonexistent-magikrun-dir", options: ["rbind"] },
        ],
      },
    );
    expect(wasmBundleFromOci(bundle)?.preopens.slice(1)).toEqual([
      { guestPath: "/cache", hostPath: join(bundle.path, "rootfs/app") },
      { guestPath: "/gone", hostPath: "/nonexistent-magikrun-dir" },
    ]);
  });

  it("leaves the rootfs out when a bind mount is the guest's / or the preopen-rootfs annotation is false", () => {
    const other = scratch.path("other-root");
    mkdirSync(other, { recursive: true });
    const replaced = ociBundle(
      "/app/main.wasm",
      { "app/main.wasm": WASM },
      { mounts: [{ destination: "/", type: "bind", source: other, options: ["rbind", "rw"] }] },
    );
    expect(wasmBundleFromOci(replaced.bundle)?.preopens).toEqual([{ guestPath: "/", hostPath: other }]);
    const none = ociBundle(
      "/app/main.wasm",
      { "app/main.wasm": WASM },
      { annotations: { [WASM_ANNOTATIONS.preopenRootfs]: "false" } },
    );
    expect(wasmBundleFromOci(none.bundle)).toMatchObject({
      modulePath: join(none.rootfs, "app/main.wasm"),
      preopens: [],
    });
    const on = ociBundle(
      "/app/main.wasm",
      { "app/main.wasm": WASM },
      { annotations: { [WASM_ANNOTATIONS.preopenRootfs]: "true" } },
    );
    expect(wasmBundleFromOci(on.bundle)?.preopens).toHaveLength(1);
  });

  it("refuses a malformed preopen-rootfs annotation and a bind mount without a source", () => {
    const bad = ociBundle(
      "/app/main.wasm",
      { "app/main.wasm": WASM },
      { annotations: { [WASM_ANNOTATIONS.preopenRootfs]: "no" } },
    );
    expect(() => wasmBundleFromOci(bad.bundle)).toThrowError(/must be true or false/);
    const sourceless = ociBundle(
      "/app/main.wasm",
      { "app/main.wasm": WASM },
      { mounts: [{ destination: "/data", type: "bind", options: ["rbind"] }] },
    );
    let error: unknown;
    try {
      wasmBundleFromOci(sourceless.bundle);
    } catch (err) {
      error = err;
    }
    expect(isMagikError(error, "InvalidBundle")).toBe(true);
    expect((error as { details: unknown }).details).toMatchObject({ mount: { destination: "/data" } });
  });
});
