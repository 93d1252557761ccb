import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliResult, runCli } from "../test-support.ts";

/** A bundle whose rootfs holds a wasm module as its program, as runwasi expects them. */
function wasmBundle(dir: string, program: string, annotations: Record<string, string> = {}): string {
  mkdirSync(join(dir, "rootfs", "app"), { recursive: true });
  writeFileSync(
    join(dir, "config.json"),
    JSON.stringify({
      ociVersion: "1.2.0",
      process: { user: { uid: 0, gid: 0 }, args: [program, "a1"], env: ["GREETING=hi"], cwd: "/" },
      root: { path: "rootfs" },
      annotations,
    }),
  );
  return dir;
}

describe("runc-style run of a wasm bundle (needs Debian's wat2wasm)", () => {
  let work: string;
  let bundle: string;

  const cli = (...args: string[]): Promise<CliResult> => runCli(["--root", join(work, "state"), ...args]);

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), "magikrun-oci-wasm-"));
    const wat = join(work, "hello.wat");
    // Writes "wasm!\n" and exits 7, so both the output and the exit code prove the module ran.
    writeFileSync(
      wat,
      `(module
        (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
        (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
        (memory (export "memory") 1)
        (data (i32.const 16) "wasm!\\n")
        (func (export "_start")
          (i32.store (i32.const 0) (i32.const 16)) (i32.store (i32.const 4) (i32.const 6))
          (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
          (call $exit (i32.const 7))))`,
    );
    execFileSync("wat2wasm", [wat, "-o", join(work, "hello.wasm")]);
    bundle = wasmBundle(join(work, "bundle"), "/app/hello.wasm");
    copyFileSync(join(work, "hello.wasm"), join(bundle, "rootfs", "app", "hello.wasm"));
  });

  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it("picks the wasm runtime by itself when the program is a wasm module", async () => {
    const res = await cli("run", "--bundle", bundle, "w1");
    expect(res.stdout).toBe("wasm!\n");
    expect(res.code).toBe(7);
  });

  it("runs it with --runtime wasm too", async () => {
    const res = await cli("run", "--runtime", "wasm", "--bundle", bundle, "w2");
    expect(res.stdout).toBe("wasm!\n");
    expect(res.code).toBe(7);
  });

  it("refuses create for wasm (a Worker cannot outlive the CLI) and leaves no state", async () => {
    const res = await cli("--json", "create", "--bundle", bundle, "w3");
    expect(res.code).toBe(1);
    expect(JSON.parse(res.stderr).error.code).toBe("NotSupported");
    const list = await cli("list", "--format", "json");
    expect(list.stdout).not.toContain("w3");
  });

  it("refuses --runtime wasm for a program that is not wasm, and unknown runtimes", async () => {
    const native = wasmBundle(join(work, "native"), "/bin/sh");
    writeFileSync(join(native, "rootfs", "app", "x"), "");
    const notWasm = await cli("--json", "run", "--runtime", "wasm", "--bundle", native, "w4");
    expect(JSON.parse(notWasm.stderr).error.code).toBe("InvalidBundle");
    const unknown = await cli("--json", "run", "--runtime", "krun2", "--bundle", bundle, "w5");
    expect(JSON.parse(unknown.stderr).error.code).toBe("InvalidInput");
  });
});
