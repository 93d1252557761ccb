import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isMagikError } from "@magikrun/spec";
import { afterAll, describe, expect, it } from "vitest";
import { type CliResult, runCli } from "../test-support.ts";
import { parseRunArgs } from "./wasm.ts";

const work = mkdtempSync(join(tmpdir(), "magikrun-cli-wasm-"));

afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Builds a module with Debian's wat2wasm (installed here and in CI). */
function wat2wasm(name: string, text: string): string {
  const watPath = join(work, `${name}.wat`);
  const wasmPath = join(work, `${name}.wasm`);
  writeFileSync(watPath, text);
  execFileSync("wat2wasm", [watPath, "-o", wasmPath]);
  return wasmPath;
}

const IMPORTS = `(import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)`;

const cli = (...args: string[]): Promise<CliResult> =>
  runCli(["--root", join(work, "root"), "--store", join(work, "root"), ...args]);

describe("parseRunArgs", () => {
  it("takes options before the module and passes everything after it to the module", () => {
    const { target, json } = parseRunArgs(
      [
        "--fuel",
        "5000",
        "--timeout=200",
        "--max-memory-pages",
        "16",
        "--env",
        "A=1",
        "--dir",
        "/tmp:/t:ro",
        "--dir",
        "/srv",
        "m.wasm",
        "--fuel",
        "x",
      ],
      { json: false },
    );
    expect(json).toBe(false);
    expect(target.kind).toBe("module");
    const bundle = target.kind === "module" ? target.bundle : undefined;
    expect(bundle).toMatchObject({
      kind: "wasm",
      args: ["m.wasm", "--fuel", "x"],
      env: ["A=1"],
      preopens: [
        { hostPath: "/tmp", guestPath: "/t", readonly: true },
        { hostPath: "/srv", guestPath: "/srv" },
      ],
      fuel: 5000,
      timeoutMs: 200,
      maxMemoryPages: 16,
    });
    expect(bundle?.modulePath).toMatch(/^\/.*m\.wasm$/);
  });

  it("takes an argument that is not a module file as an image reference whose Cmd the rest replaces", () => {
    const image = parseRunArgs(["--pull", "--fuel", "5", "--env", "A=1", "127.0.0.1:5000/x:v1", "a"], {
      json: true,
    });
    expect(image).toEqual({
      json: true,
      target: {
        kind: "image",
        reference: "127.0.0.1:5000/x:v1",
        pull: true,
        overrides: { env: ["A=1"], preopens: [], fuel: 5, cmd: ["a"] },
      },
    });
    const bare = parseRunArgs(["hello"], { json: false }).target;
    // No args: the image's own Cmd stays.
    expect(bare).toEqual({
      kind: "image",
      reference: "hello",
      pull: false,
      overrides: { env: [], preopens: [] },
    });
    for (const module of ["m.wasm", "./m", "/abs/m", "../m"]) {
      expect(parseRunArgs([module], { json: false }).target.kind, module).toBe("module");
    }
  });

  it("refuses bad values with InvalidInput naming the option", () => {
    for (const args of [
      ["--fuel", "-1", "m.wasm"],
      ["--timeout", "soon", "m.wasm"],
      ["--env", "NOEQ", "m.wasm"],
      ["--dir", "/a:/b:rx", "m.wasm"],
      ["--what", "m.wasm"],
      ["--pull", "m.wasm"],
      [],
    ]) {
      let error: unknown;
      try {
        parseRunArgs(args, { json: false });
      } catch (err) {
        error = err;
      }
      expect(isMagikError(error, "InvalidInput"), args.join(" ")).toBe(true);
    }
  });
});

describe("magikrun wasm run", () => {
  it("runs a module in the foreground and exits with its code", async () => {
    const hello = wat2wasm(
      "hello",
      `(module ${IMPORTS}
        (data (i32.const 64) "hi\\n")
        (func (export "_start")
          (i32.store (i32.const 0) (i32.const 64)) (i32.store (i32.const 4) (i32.const 3))
          (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
          (call $exit (i32.const 3))))`,
    );
    const result = await cli("wasm", "run", hello);
    expect(result).toMatchObject({ code: 3, stdout: "hi\n" });
    const json = await cli("wasm", "run", "--json", hello);
    expect(json.code).toBe(3);
    expect(JSON.parse(json.stdout.split("\n").at(-2)!)).toMatchObject({
      exit: { code: 3, reason: "exited" },
    });
  });

  it("reports limits crossed with their own exit codes", async () => {
    const spin = wat2wasm(
      "spin",
      `(module ${IMPORTS} (func (export "_start") (local $i i32)
        (loop $l (local.set $i (i32.add (local.get $i) (i32.const 1))) (br $l))))`,
    );
    const fuel = await cli("--json", "wasm", "run", "--fuel", "100000", spin);
    expect(fuel.code).toBe(134);
    expect(JSON.parse(fuel.stdout)).toMatchObject({ exit: { reason: "fuel-exhausted" } });
    const timeout = await cli("wasm", "run", "--fuel", "1000000000000000", "--timeout", "100", spin);
    expect(timeout.code).toBe(124);
    expect(timeout.stderr).toContain("timeout");
  });

  it("refuses a file that is not a module with a clear error", async () => {
    const bogus = join(work, "bogus.wasm");
    writeFileSync(bogus, "not wasm");
    const result = await cli("--json", "wasm", "run", bogus);
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stderr)).toMatchObject({
      error: { code: "InvalidBundle", details: { path: bogus } },
    });
  });
});
