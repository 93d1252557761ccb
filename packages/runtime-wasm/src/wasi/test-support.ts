/** Helpers for the WASI tests: building C test programs once, and running them with captured stdio. */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { WasiOptions } from "./options.ts";
import { Wasi } from "./wasi.ts";

const CACHE_DIR = join(tmpdir(), "magikrun-wasi-test-cache");
const decoder = new TextDecoder();

/** Compiles testdata/<name>.c for wasm32-wasi, cached by source hash; parallel workers race safely via rename. */
export function buildC(name: string): Uint8Array {
  const source = readFileSync(new URL(`./testdata/${name}.c`, import.meta.url));
  const hash = createHash("sha256").update(source).digest("hex").slice(0, 16);
  const out = join(CACHE_DIR, `${name}-${hash}.wasm`);
  if (!existsSync(out)) {
    mkdirSync(CACHE_DIR, { recursive: true });
    const staging = mkdtempSync(join(CACHE_DIR, "build-"));
    try {
      const src = join(staging, `${name}.c`);
      execFileSync("cp", [new URL(`./testdata/${name}.c`, import.meta.url).pathname, src]);
      const wasm = join(staging, `${name}.wasm`);
      execFileSync("clang-14", ["--target=wasm32-wasi", "-O2", "-Wall", src, "-o", wasm], { stdio: "pipe" });
      renameSync(wasm, out);
    } finally {
      rmSync(staging, { recursive: true, force: true });
    }
  }
  return readFileSync(out);
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a WASI command module in this thread with stdout/stderr captured. */
export function runWasi(
  wasm: Uint8Array,
  options: Partial<WasiOptions> & { args?: string[] } = {},
): RunResult {
  const out: Uint8Array[] = [];
  const err: Uint8Array[] = [];
  const wasi = new Wasi({
    args: options.args ?? ["prog"],
    env: options.env ?? [],
    preopens: options.preopens ?? [],
    stdout: (c) => out.push(c),
    stderr: (c) => err.push(c),
    ...(options.stdin === undefined ? {} : { stdin: options.stdin }),
    ...(options.sockets === undefined ? {} : { sockets: options.sockets }),
    ...(options.clock === undefined ? {} : { clock: options.clock }),
    ...(options.maxFds === undefined ? {} : { maxFds: options.maxFds }),
    ...(options.confinement === undefined ? {} : { confinement: options.confinement }),
  });
  try {
    const instance = new WebAssembly.Instance(new WebAssembly.Module(wasm), wasi.imports);
    const code = wasi.start(instance);
    const text = (chunks: Uint8Array[]) => chunks.map((c) => decoder.decode(c)).join("");
    return { code, stdout: text(out), stderr: text(err) };
  } finally {
    wasi.close();
  }
}

/** A fresh directory for one test; remove it with `rmSync(dir, { recursive: true })` in afterEach. */
export function tempDir(label: string): string {
  return mkdtempSync(join(tmpdir(), `magikrun-wasi-${label}-`));
}
