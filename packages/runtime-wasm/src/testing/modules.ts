/** WebAssembly text of the modules the engine tests run, written against the WASI calls the stand-in has. */

const WASI_IMPORTS = `
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))`;

/** Writes `text` to stdout, then exits with `code`. */
export function helloWat(text: string, code: number): string {
  const escaped = [...new TextEncoder().encode(text)]
    .map((b) => `\\${b.toString(16).padStart(2, "0")}`)
    .join("");
  return `(module ${WASI_IMPORTS}
  (memory (export "memory") 1)
  (data (i32.const 64) "${escaped}")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const ${new TextEncoder().encode(text).length}))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (call $proc_exit (i32.const ${code}))))`;
}

/** Counts to `n` in a loop, then returns from _start (exit code 0). */
export function countWat(n: number): string {
  return `(module ${WASI_IMPORTS}
  (memory (export "memory") 1)
  (func (export "_start") (local $i i32)
    (loop $l
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const ${n}))))))`;
}

/** Never ends on its own: a tight loop with no calls, the case only an interrupt check can stop. */
export const SPIN_WAT = `(module ${WASI_IMPORTS}
  (memory (export "memory") 1)
  (global $sink (mut i32) (i32.const 0))
  (func (export "_start") (local $i i32)
    (loop $l
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (global.set $sink (local.get $i))
      (br $l))))`;

/** Grows its memory by `pages`; exits 0 when the grow succeeded, 1 when memory.grow returned -1. */
export function growWat(declared: string, pages: number): string {
  return `(module ${WASI_IMPORTS}
  (memory (export "memory") ${declared})
  (func (export "_start")
    (call $proc_exit (i32.eq (memory.grow (i32.const ${pages})) (i32.const -1)))))`;
}

/** Same as growWat with an imported memory. */
export function growImportedWat(declared: string, pages: number): string {
  return `(module ${WASI_IMPORTS}
  (import "env" "memory" (memory ${declared}))
  (export "memory" (memory 0))
  (func (export "_start")
    (call $proc_exit (i32.eq (memory.grow (i32.const ${pages})) (i32.const -1)))))`;
}

export const TRAP_WAT = `(module ${WASI_IMPORTS}
  (memory (export "memory") 1)
  (func (export "_start") unreachable))`;

export const RECURSE_WAT = `(module ${WASI_IMPORTS}
  (memory (export "memory") 1)
  (func $f (param i32) (result i32) (i32.add (call $f (i32.add (local.get 0) (i32.const 1))) (i32.const 1)))
  (func (export "_start") (drop (call $f (i32.const 0)))))`;

export const REACTOR_WAT = `(module
  (memory (export "memory") 1)
  (func (export "_initialize")))`;
