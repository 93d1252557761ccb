import fs from "node:fs";
import path from "node:path";
import {
  type ImageConfig,
  MagikError,
  type Mount,
  type RuntimeConfig,
  WASM_ANNOTATIONS,
  type WasiPreopen,
} from "@magikrun/spec";
import { assembleOciConfig, type ProcessSpec } from "./oci-config.ts";

/**
 * The runc-style face of a wasm bundle: the config.json beside bundle.json, so that `magikrun run --bundle`
 * (wasmBundleFromOci in @magikrun/runtime-wasm), crun's wasm handler or a runwasi-like shim can run the bundle
 * too. The two files must describe the same instance; wasmBundleFromOci is the reading this writes for.
 */

/** What an image must not set for itself through its labels: the bundle's own handler and limits. */
const BUNDLE_KEYS = [
  WASM_ANNOTATIONS.handler,
  WASM_ANNOTATIONS.fuel,
  WASM_ANNOTATIONS.maxMemoryPages,
  WASM_ANNOTATIONS.timeoutMs,
  WASM_ANNOTATIONS.preopenRootfs,
];

export interface WasmOciConfigInput {
  image: ImageConfig;
  process: ProcessSpec;
  /** Absolute, or relative to the bundle directory. */
  rootfsPath: string;
  id: string;
  /** Whether the rootfs is the guest's "/" (ordinary images) or only holds the module (wasm artifacts). */
  preopenRootfs: boolean;
  /** Preopens besides the rootfs, in order. */
  preopens: WasiPreopen[];
  fuel: number;
  maxMemoryPages?: number;
  timeoutMs?: number;
}

/**
 * A preopen as the bind mount runc and crun would make of it: the guest then finds the directory at the same
 * place under "/", which is how runwasi exposes mounts to a module; wasmBundleFromOci maps it back.
 */
export function preopenMount(preopen: WasiPreopen): Mount {
  return {
    destination: preopen.guestPath,
    type: "bind",
    source: preopen.hostPath,
    options: ["rbind", preopen.readonly ? "ro" : "rw"],
  };
}

/** config.json of a wasm bundle: runc's defaults, the module as process.args[0], limits as annotations. */
export function buildWasmOciConfig(input: WasmOciConfigInput): RuntimeConfig {
  const annotations: Record<string, string> = { ...(input.image.config?.Labels ?? {}) };
  // An image label must not set limits the bundle (bundle.json) does not have: both files say the same.
  for (const key of BUNDLE_KEYS) delete annotations[key];
  annotations[WASM_ANNOTATIONS.handler] = "wasm";
  annotations[WASM_ANNOTATIONS.fuel] = String(input.fuel);
  if (input.maxMemoryPages !== undefined) {
    annotations[WASM_ANNOTATIONS.maxMemoryPages] = String(input.maxMemoryPages);
  }
  if (input.timeoutMs !== undefined) annotations[WASM_ANNOTATIONS.timeoutMs] = String(input.timeoutMs);
  if (!input.preopenRootfs) annotations[WASM_ANNOTATIONS.preopenRootfs] = "false";
  return assembleOciConfig({
    // WASI has no users and no HOME of its own: the module's environment is exactly bundle.json's.
    process: input.process,
    user: { uid: 0, gid: 0, additionalGids: [] },
    root: { path: input.rootfsPath, readonly: false },
    hostname: input.id.slice(0, 63),
    terminal: false,
    mounts: input.preopens.map(preopenMount),
    annotations,
  });
}

/**
 * A wasm artifact has no file system: its rootfs is made to hold the module (hard-linked, it is the same file as
 * bundle.json's module) where process.args[0] resolves from process.cwd, plus the working directory, which
 * crun enters before it hands the module to its wasm handler. Returns root.path (relative to the bundle).
 */
export function artifactRootfs(bundleDir: string, modulePath: string, proc: ProcessSpec): string {
  const program = proc.args[0] ?? "";
  const inRoot = path.posix.resolve(proc.cwd, program);
  if (program === "" || inRoot === "/") {
    throw new MagikError("InvalidInput", `the command ${JSON.stringify(program)} cannot name the module`, {
      details: { args: proc.args, cwd: proc.cwd },
      hint: "The first argument of a wasm artifact's command is the module's file name, e.g. module.wasm.",
    });
  }
  const rootfs = path.join(bundleDir, "rootfs");
  const target = path.join(rootfs, inRoot);
  fs.mkdirSync(path.join(rootfs, proc.cwd), { recursive: true, mode: 0o755 });
  fs.mkdirSync(path.dirname(target), { recursive: true, mode: 0o755 });
  try {
    fs.linkSync(modulePath, target);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === "EEXIST") {
      throw new MagikError("InvalidInput", `the module cannot be placed at ${inRoot}`, {
        details: { args: proc.args, cwd: proc.cwd, path: inRoot },
        hint: "process.args[0] must not name the working directory or one of its parents.",
      });
    }
    // A file system without hard links: a copy is the same module.
    fs.copyFileSync(modulePath, target, fs.constants.COPYFILE_EXCL);
  }
  // Relative, as runc bundles have it: the bundle directory stays self-contained.
  return path.basename(rootfs);
}
