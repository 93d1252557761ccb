import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { WasmBundle } from "@magikrun/spec";
import { wat } from "./wat.ts";

/** The WASI stand-in, for engine tests that should not depend on the full WASI implementation. */
export const WASI_STUB_URL = new URL("./wasi-stub.ts", import.meta.url).href;

/** A private temp dir per test file, removed by `cleanup`. */
export class Scratch {
  readonly dir = mkdtempSync(join(tmpdir(), "magikrun-wasm-test-"));
  #n = 0;

  path(name: string): string {
    return join(this.dir, name);
  }

  /** Writes a module (WAT text or bytes) and returns a bundle that runs it. */
  async bundle(module: string | Uint8Array, extra: Partial<WasmBundle> = {}): Promise<WasmBundle> {
    const bytes = typeof module === "string" ? await wat(module) : module;
    const modulePath = this.path(`m${this.#n++}.wasm`);
    writeFileSync(modulePath, bytes);
    return { kind: "wasm", path: this.dir, modulePath, args: ["main"], env: [], preopens: [], ...extra };
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
