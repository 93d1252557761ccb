import { execFileSync } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeSync } from "node:fs";
import type { WasmBundle } from "@magikrun/spec";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { WasmRuntime } from "./runtime.ts";
import { compileC } from "./testing/clang.ts";
import { Scratch } from "./testing/fixtures.ts";

/** C programs on the real WASI layer (the default of WasmRuntime), end to end through the OCI lifecycle. */
let scratch: Scratch;
let runtime: WasmRuntime;
let hello: string;
let cpu: string;

beforeAll(() => {
  scratch = new Scratch();
  runtime = new WasmRuntime({ root: scratch.path("root") });
  runtime.warm();
  hello = compileC("hello.c", scratch.path("hello.wasm"));
  cpu = compileC("cpu.c", scratch.path("cpu.wasm"));
});

afterEach(async () => {
  for (const c of await runtime.list()) await runtime.delete(c.id, { force: true });
});

afterAll(() => {
  runtime.close();
  scratch.cleanup();
});

describe("C programs on WASI", () => {
  it("sees its args, env and preopened dir, and exits with main's return value", async () => {
    const data = scratch.path("data");
    mkdirSync(data);
    const stdout = scratch.path("hello.out");
    await runtime.create({
      id: "hello",
      bundle: {
        kind: "wasm",
        path: scratch.dir,
        modulePath: hello,
        args: ["hello", "7"],
        env: ["GREETING=hi"],
        preopens: [{ guestPath: "/data", hostPath: data }],
      },
      stdio: { stdout: { path: stdout } },
    });
    await runtime.start("hello");
    expect(await runtime.wait("hello")).toMatchObject({ code: 7, reason: "exited" });
    expect(readFileSync(stdout, "utf8")).toBe("hello from wasm, 2 args: hello 7\nGREETING=hi\n");
    expect(readFileSync(`${data}/out.txt`, "utf8")).toBe("written by the guest\n");
  });

  it("bounds a CPU-bound program by fuel and stops it on kill", async () => {
    const bundle: WasmBundle = {
      kind: "wasm",
      path: scratch.dir,
      modulePath: cpu,
      args: [],
      env: [],
      preopens: [],
    };
    await runtime.create({ id: "metered", bundle: { ...bundle, args: ["cpu", "1"], fuel: 1_000_000 } });
    await runtime.start("metered");
    expect(await runtime.wait("metered")).toMatchObject({ reason: "fuel-exhausted" });
    await runtime.create({ id: "long", bundle: { ...bundle, args: ["cpu", "100000"], fuel: 1e15 } });
    await runtime.start("long");
    await runtime.kill("long", "SIGTERM");
    expect(await runtime.wait("long")).toMatchObject({ code: 143, reason: "signaled" });
  });
});

describe("a guest blocked in a host call", () => {
  it("is reported killed once the grace period is over, its Worker terminated", async () => {
    const fifo = scratch.path("stdin.fifo");
    execFileSync("mkfifo", [fifo]);
    // Read-write so that opening does not wait for a writer; the guest's read blocks until we write.
    const stdin = openSync(fifo, "r+");
    const quick = new WasmRuntime({ root: scratch.path("root"), interruptGraceMs: 100, spareWorkers: 0 });
    try {
      const bundle = await scratch.bundle(READ_STDIN_WAT);
      const stdout = scratch.path("reader.out");
      await quick.create({ id: "reader", bundle, stdio: { stdin: { fd: stdin }, stdout: { path: stdout } } });
      await quick.start("reader");
      // The guest says when it is about to read: only then is the kill sure to find it inside the host call.
      while (!existsSync(stdout) || readFileSync(stdout, "utf8") !== "reading\n") await Bun.sleep(10);
      await quick.kill("reader", "SIGKILL");
      expect(await quick.wait("reader")).toMatchObject({ code: 137, reason: "killed" });
      await quick.delete("reader");
    } finally {
      writeSync(stdin, "unblock"); // lets the blocked read return so the terminated thread can go
      closeSync(stdin);
      quick.close();
    }
  });
});

const READ_STDIN_WAT = `(module
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 32) "reading\\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 32))
    (i32.store (i32.const 4) (i32.const 8))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 16))
    (drop (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))))`;
