export { InstrumentCache, type PreparedModule, sha256Hex } from "./cache.ts";
export {
  DEFAULT_FUEL_SLICE,
  INTERRUPT_GRACE_MS,
  type InstanceSpec,
  type WasmExit,
  WasmInstance,
} from "./engine.ts";
export { EXIT_CODE, parseSignal } from "./exit-codes.ts";
export {
  FUEL_IMPORT,
  type ImportedMemory,
  INSTRUMENTER_VERSION,
  type InstrumentedModule,
  type InstrumentOptions,
  instrumentModule,
} from "./instrument.ts";
export { assertValidModule, readModuleFile } from "./load.ts";
export { WASM_ANNOTATIONS, wasmBundleFromOci } from "./oci-bundle.ts";
export { type FreshWorker, WorkerPool, type WorkerPoolOptions } from "./pool.ts";
export { FUEL_EXPORT } from "./protocol.ts";
export { OCI_VERSION, WasmRuntime, type WasmRuntimeOptions } from "./runtime.ts";
