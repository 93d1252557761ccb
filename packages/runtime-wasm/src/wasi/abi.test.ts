import { beforeAll, describe, expect, it } from "vitest";
import wabt from "wabt";
import { Errno } from "./constants.ts";
import { Wasi } from "./wasi.ts";

/** Every function of wasi_snapshot_preview1.witx. */
const PREVIEW1 = [
  "args_get",
  "args_sizes_get",
  "environ_get",
  "environ_sizes_get",
  "clock_res_get",
  "clock_time_get",
  "fd_advise",
  "fd_allocate",
  "fd_close",
  "fd_datasync",
  "fd_fdstat_get",
  "fd_fdstat_set_flags",
  "fd_fdstat_set_rights",
  "fd_filestat_get",
  "fd_filestat_set_size",
  "fd_filestat_set_times",
  "fd_pread",
  "fd_prestat_get",
  "fd_prestat_dir_name",
  "fd_pwrite",
  "fd_read",
  "fd_readdir",
  "fd_renumber",
  "fd_seek",
  "fd_sync",
  "fd_tell",
  "fd_write",
  "path_create_directory",
  "path_filestat_get",
  "path_filestat_set_times",
  "path_link",
  "path_open",
  "path_readlink",
  "path_remove_directory",
  "path_rename",
  "path_symlink",
  "path_unlink_file",
  "poll_oneoff",
  "proc_exit",
  "proc_raise",
  "sched_yield",
  "random_get",
  "sock_accept",
  "sock_recv",
  "sock_send",
  "sock_shutdown",
];

let toWasm: (text: string) => Uint8Array;

beforeAll(async () => {
  const tools = await wabt();
  toWasm = (text) => {
    const module = tools.parseWat("test.wat", text);
    try {
      return module.toBinary({}).buffer;
    } finally {
      module.destroy();
    }
  };
});

function newWasi(out: Uint8Array[]): Wasi {
  return new Wasi({ args: ["m"], env: [], preopens: [], stdout: (c) => out.push(c) });
}

const FD_WRITE = `(import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))`;

describe("the preview 1 ABI", () => {
  it("provides exactly the functions of wasi_snapshot_preview1", () => {
    const functions = newWasi([]).imports.wasi_snapshot_preview1 ?? {};
    expect(Object.keys(functions).sort()).toEqual([...PREVIEW1].sort());
  });

  it("re-reads memory after it grew: writes from a page that did not exist at bind time", () => {
    const wasm = toWasm(`(module ${FD_WRITE}
      (memory (export "memory") 1)
      (func (export "_start")
        (drop (memory.grow (i32.const 2)))
        ;; "grown\\n" at 0x20000 (third page), its iovec at 0x20010
        (i64.store (i32.const 0x20000) (i64.const 0x0a6e776f7267))
        (i32.store (i32.const 0x20010) (i32.const 0x20000))
        (i32.store (i32.const 0x20014) (i32.const 6))
        (call $proc_exit (call $fd_write (i32.const 1) (i32.const 0x20010) (i32.const 1) (i32.const 0x20020)))))`);
    const out: Uint8Array[] = [];
    const wasi = newWasi(out);
    const instance = new WebAssembly.Instance(new WebAssembly.Module(wasm), wasi.imports);
    expect(wasi.start(instance)).toBe(Errno.SUCCESS);
    expect(new TextDecoder().decode(out[0])).toBe("grown\n");
  });

  it("answers EFAULT for buffers past the end of memory, without trapping", () => {
    const wasm = toWasm(`(module ${FD_WRITE}
      (memory (export "memory") 1)
      (func (export "_start")
        (i32.store (i32.const 0) (i32.const 0xfff0))
        (i32.store (i32.const 4) (i32.const 0x100))
        (call $proc_exit (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))`);
    const wasi = newWasi([]);
    const instance = new WebAssembly.Instance(new WebAssembly.Module(wasm), wasi.imports);
    expect(wasi.start(instance)).toBe(Errno.FAULT);
  });

  it("binds an imported memory when the module exports none", () => {
    const wasm = toWasm(`(module
      (import "env" "memory" (memory 1))
      ${FD_WRITE}
      (func (export "_start")
        (i32.store (i32.const 16) (i32.const 0x0a6b6f))
        (i32.store (i32.const 0) (i32.const 16))
        (i32.store (i32.const 4) (i32.const 3))
        (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))`);
    const out: Uint8Array[] = [];
    const wasi = newWasi(out);
    const memory = new WebAssembly.Memory({ initial: 1 });
    const instance = new WebAssembly.Instance(new WebAssembly.Module(wasm), {
      ...wasi.imports,
      env: { memory },
    });
    wasi.bind(instance, memory);
    expect(wasi.start(instance)).toBe(0);
    expect(new TextDecoder().decode(out[0])).toBe("ok\n");
  });

  it("runs a reactor's _initialize", () => {
    const wasm = toWasm(`(module
      (memory (export "memory") 1)
      (global $ready (export "ready") (mut i32) (i32.const 0))
      (func (export "_initialize") (global.set $ready (i32.const 1))))`);
    const wasi = newWasi([]);
    const instance = new WebAssembly.Instance(new WebAssembly.Module(wasm), wasi.imports);
    wasi.initialize(instance);
    expect((instance.exports.ready as WebAssembly.Global).value).toBe(1);
  });
});
