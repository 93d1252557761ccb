/**
 * Annotations that mark an image or an OCI bundle as WebAssembly (as crun and runwasi read them) and carry a wasm
 * container's limits. Written by the image layer (bundles of wasm images) and read by the wasm runtime, so they
 * live here, below both.
 */
export const WASM_ANNOTATIONS = {
  /** Set by wasm image builders (buildah, docker buildx): "compat" or "compat-smart". */
  variant: "module.wasm.image/variant",
  /** crun's handler selection: "wasm" marks the program as a module whatever its file name. */
  handler: "run.oci.handler",
  fuel: "run.magikrun.wasm.fuel",
  maxMemoryPages: "run.magikrun.wasm.max-memory-pages",
  timeoutMs: "run.magikrun.wasm.timeout-ms",
  /** "false" keeps the rootfs from being preopened as "/" (bundles of wasm artifacts: the module has no fs). */
  preopenRootfs: "run.magikrun.wasm.preopen-rootfs",
} as const;
