import { execFileSync } from "node:child_process";

/** Compiles one of ./c/*.c for wasm32-wasi with Debian's clang-14 (wasi-libc and lld-14 installed beside it). */
export function compileC(name: string, outPath: string): string {
  const source = new URL(`./c/${name}`, import.meta.url).pathname;
  execFileSync("clang-14", ["--target=wasm32-wasi", "-O2", source, "-o", outPath], { stdio: "pipe" });
  return outPath;
}
