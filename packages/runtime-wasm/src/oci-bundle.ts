import { closeSync, openSync, readSync, realpathSync } from "node:fs";
import { isAbsolute, posix, resolve, sep } from "node:path";
import { MagikError } from "@magikrun/spec/errors";
import type { OciBundle, WasmBundle } from "@magikrun/spec/runtime";

/** Annotations that mark an image or bundle as WebAssembly (as crun and runwasi read them) and set its limits. */
export const WASM_ANNOTATIONS = {
  /** Set by wasm image builders (buildah, docker buildx): "compat" or "compat-smart". */
  variant: "module.wasm.image/variant",
  /** crun's handler selection: "wasm". */
  handler: "run.oci.handler",
  fuel: "run.magikrun.wasm.fuel",
  maxMemoryPages: "run.magikrun.wasm.max-memory-pages",
  timeoutMs: "run.magikrun.wasm.timeout-ms",
} as const;

const WASM_MAGIC = [0x00, 0x61, 0x73, 0x6d];

function startsWithWasmMagic(path: string): boolean {
  let fd: number | undefined;
  try {
    fd = openSync(path, "r");
    const head = new Uint8Array(4);
    return readSync(fd, head, 0, 4, 0) === 4 && WASM_MAGIC.every((b, i) => head[i] === b);
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function annotatedLimit(annotations: Record<string, string>, key: string): number | undefined {
  const raw = annotations[key];
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(value) || value <= 0) {
    throw new MagikError(
      "InvalidBundle",
      `annotation ${key} must be a positive integer, got ${JSON.stringify(raw)}`,
      {
        details: { annotation: key, value: raw },
      },
    );
  }
  return value;
}

/**
 * Reads an OCI bundle as a wasm bundle when its program is a WebAssembly module: process.args[0] resolved in the
 * rootfs starts with the wasm magic, or the wasm annotations say so. Like runwasi, the rootfs is preopened as "/"
 * (read-only when root.readonly). Returns undefined for an ordinary (native) bundle, so callers can pick the
 * runtime automatically. The module must stay inside the rootfs, symlinks included.
 */
export function wasmBundleFromOci(bundle: OciBundle): WasmBundle | undefined {
  const { process: proc, root } = bundle.config;
  const annotations = bundle.config.annotations ?? {};
  const program = proc?.args?.[0];
  if (!program || !root) return undefined;
  const rootfs = realpathSync(resolve(bundle.path, root.path));
  const inRoot = posix.normalize(
    posix.join("/", isAbsolute(program) ? program : posix.join(proc.cwd, program)),
  );
  const candidate = resolve(rootfs, `.${inRoot}`);
  let modulePath: string;
  try {
    modulePath = realpathSync(candidate);
  } catch {
    return undefined;
  }
  if (modulePath !== rootfs && !modulePath.startsWith(rootfs + sep)) {
    throw new MagikError("PathTraversal", `the module ${program} resolves outside the rootfs`, {
      details: { program, resolved: modulePath, rootfs },
    });
  }
  const annotated =
    annotations[WASM_ANNOTATIONS.handler] === "wasm" ||
    (annotations[WASM_ANNOTATIONS.variant] ?? "").startsWith("compat");
  if (!annotated && !startsWithWasmMagic(modulePath)) return undefined;
  const wasm: WasmBundle = {
    kind: "wasm",
    path: bundle.path,
    modulePath,
    args: proc.args ?? [program],
    env: proc.env ?? [],
    preopens: [{ guestPath: "/", hostPath: rootfs, ...(root.readonly && { readonly: true }) }],
  };
  const fuel = annotatedLimit(annotations, WASM_ANNOTATIONS.fuel);
  const maxMemoryPages = annotatedLimit(annotations, WASM_ANNOTATIONS.maxMemoryPages);
  const timeoutMs = annotatedLimit(annotations, WASM_ANNOTATIONS.timeoutMs);
  if (fuel !== undefined) wasm.fuel = fuel;
  if (maxMemoryPages !== undefined) wasm.maxMemoryPages = maxMemoryPages;
  if (timeoutMs !== undefined) wasm.timeoutMs = timeoutMs;
  return wasm;
}
