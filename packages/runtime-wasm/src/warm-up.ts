/**
 * A module a freshly booted Worker runs once, through the same code as a real instance (init, run), while it is
 * still a spare: JSC generates bytecode for a JS function on its first call, so the first instance in a Worker
 * otherwise paid for compiling the WASI layer and the instance code (about 2 ms of a hello world's 8).
 * It writes one byte to /dev/null and exits 0.
 */
export const WARM_UP_WAT = `(module
  (import "wasi_snapshot_preview1" "fd_fdstat_get" (func $fdstat (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "\\80\\00\\00\\00\\01\\00\\00\\00")
  (data (i32.const 128) "\\n")
  (func (export "_start")
    (drop (call $fdstat (i32.const 1) (i32.const 0)))
    (drop (call $write (i32.const 1) (i32.const 64) (i32.const 1) (i32.const 96)))
    (call $exit (i32.const 0))))`;

/** WARM_UP_WAT as instrumentModule(_, { maxMemoryPages: 1, meter: true }) rewrites it (checked by a test). */
export const WARM_UP_MODULE = Uint8Array.fromBase64(
  "AGFzbQEAAAABGwVgAn9/AX9gBH9/f38Bf2ABfwBgAABgAX4BfgJ/BBZ3YXNpX3NuYXBzaG90X3ByZXZpZXcxDWZkX2Zkc3RhdF9nZXQAABZ3YXNpX3NuYXBzaG90X3ByZXZpZXcxCGZkX3dyaXRlAAEWd2FzaV9zbmFwc2hvdF9wcmV2aWV3MQlwcm9jX2V4aXQAAghtYWdpa3J1bgZyZWZ1ZWwABAMCAQMFBAEBAQEGBgF+AUIACwcjAwZtZW1vcnkCAAZfc3RhcnQABA1tYWdpa3J1bjpmdWVsAwAKMQEvACMAQg19JAAjAEIAUwRAIwAQAyQAC0EBQQAQABpBAUHAAEEBQeAAEAEaQQAQAgsLFgIAQcAACwiAAAAAAQAAAABBgAELAQo=",
);
