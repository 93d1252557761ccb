import { readFileSync, statSync } from "node:fs";
import { type Limits, MagikError } from "@magikrun/spec";

/** Reads a module file, refusing it before reading when it crosses MAX_WASM_MODULE_SIZE. */
export function readModuleFile(path: string, limits: Pick<Limits, "MAX_WASM_MODULE_SIZE">): Uint8Array {
  let size: number;
  try {
    const stat = statSync(path);
    if (!stat.isFile()) throw Object.assign(new Error("not a regular file"), { code: "EINVAL" });
    size = stat.size;
  } catch (err) {
    const errno = (err as { code?: string }).code;
    throw new MagikError("InvalidBundle", `cannot read wasm module ${path}: ${errno ?? String(err)}`, {
      cause: err,
      details: { path, errno },
      hint: "The bundle's modulePath must name a readable .wasm file.",
    });
  }
  const max = limits.MAX_WASM_MODULE_SIZE;
  if (size > max) {
    throw new MagikError("ResourceExhausted", `wasm module is ${size} bytes, over MAX_WASM_MODULE_SIZE`, {
      details: { limit: "MAX_WASM_MODULE_SIZE", max, value: size, path },
      hint: "Raise MAX_WASM_MODULE_SIZE for this runtime if the module is trusted and this is intended.",
    });
  }
  const bytes = readFileSync(path);
  // The file may have grown between stat and read.
  if (bytes.length > max) return readModuleFile(path, limits);
  return bytes;
}

/** Validates before any rewriting, so the error names the module's own defect. */
export function assertValidModule(bytes: Uint8Array, path: string): void {
  if (WebAssembly.validate(bytes)) return;
  let reason = "not a valid WebAssembly module";
  try {
    new WebAssembly.Module(bytes);
  } catch (err) {
    // JSC appends the JS expression that failed, which only names our own call.
    reason = (err instanceof Error ? err.message : String(err)).replace(/ \(evaluating '.*'\)$/, "");
  }
  throw new MagikError("InvalidBundle", `invalid wasm module ${path}: ${reason}`, {
    details: { path, size: bytes.length, reason },
    hint: "The file is truncated or not a WebAssembly binary; rebuild it for wasm32-wasi.",
  });
}
