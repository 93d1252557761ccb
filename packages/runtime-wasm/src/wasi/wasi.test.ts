import { closeSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { Errno } from "./constants.ts";
import { WasiExit } from "./errors.ts";
import { buildC, runWasi, tempDir } from "./test-support.ts";
import { Wasi } from "./wasi.ts";

let hello: Uint8Array;
let time: Uint8Array;
const dirs: string[] = [];

beforeAll(() => {
  hello = buildC("hello");
  time = buildC("time");
});

afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe("process: args, environ, stdio, exit", () => {
  it("writes stdout and stderr, sees args and env in order", () => {
    const result = runWasi(hello, {
      args: ["hello", "a b", "ünïcode"],
      env: ["GREETING=hi there", "EMPTY="],
    });
    expect(result.code).toBe(0);
    expect(result.stderr).toBe("to stderr\n");
    expect(result.stdout).toBe(
      [
        "hello, world",
        "arg[0]=hello",
        "arg[1]=a b",
        "arg[2]=ünïcode",
        "env=GREETING=hi there",
        "env=EMPTY=",
        "GREETING=hi there",
        "",
      ].join("\n"),
    );
  });

  it("returns main's return value and proc_exit codes", () => {
    expect(runWasi(hello, { args: ["hello", "return", "3"] }).code).toBe(3);
    expect(runWasi(hello, { args: ["hello", "exit", "0"] }).code).toBe(0);
    expect(runWasi(hello, { args: ["hello", "exit", "255"] }).code).toBe(255);
    expect(runWasi(time, { args: ["t", "exit", "42"] }).code).toBe(42);
  });

  it("reports proc_raise as unsupported", () => {
    expect(runWasi(time, { args: ["t", "raise"] }).stdout).toBe(`raise=${Errno.NOTSUP}\n`);
  });

  it("connects stdin and stdout to host fds (log files)", () => {
    const dir = tempDir("stdio");
    dirs.push(dir);
    writeFileSync(join(dir, "in"), "line one\nline two\n");
    const outFd = openSync(join(dir, "out"), "w");
    const inFd = openSync(join(dir, "in"), "r");
    const wasi = new Wasi({ args: ["hello", "cat"], env: [], preopens: [], stdin: inFd, stdout: outFd });
    try {
      const instance = new WebAssembly.Instance(new WebAssembly.Module(hello), wasi.imports);
      expect(wasi.start(instance)).toBe(0);
    } finally {
      wasi.close();
      closeSync(outFd);
      closeSync(inFd);
    }
    expect(readFileSync(join(dir, "out"), "utf8")).toBe("line one\nline two\n[18 bytes]\n");
  });

  it("reads an ignored stdin as empty", () => {
    expect(runWasi(hello, { args: ["hello", "cat"] }).stdout).toBe("[0 bytes]\n");
  });

  it("refuses a preopen that is not a directory", () => {
    const dir = tempDir("badpre");
    dirs.push(dir);
    writeFileSync(join(dir, "file"), "");
    expect(
      () => new Wasi({ args: [], env: [], preopens: [{ guestPath: "/x", hostPath: join(dir, "file") }] }),
    ).toThrow(/cannot open/);
  });

  it("exposes WasiExit with the code", () => {
    expect(new WasiExit(9).code).toBe(9);
  });
});
