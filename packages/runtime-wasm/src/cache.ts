import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { MagikError } from "@magikrun/spec";
import {
  type ImportedMemory,
  INSTRUMENTER_VERSION,
  type InstrumentOptions,
  instrumentModule,
} from "./instrument.ts";
import { assertValidModule } from "./load.ts";

export interface PreparedModule {
  /** Compiled, instrumented module: can be posted to any number of Workers, each instantiates its own store. */
  module: WebAssembly.Module;
  importedMemories: ImportedMemory[];
  /** sha256 of the original module, hex. */
  digest: string;
  /** Where it came from: "memory" and "disk" skipped the rewrite. */
  source: "memory" | "disk" | "rewrite";
}

const MEMORY_ENTRIES = 64;
/** Below this size a synchronous compile is faster than a trip through the compiler threads and event loop. */
const SYNC_COMPILE_MAX = 1024 * 1024;

function compile(bytes: Uint8Array): Promise<WebAssembly.Module> {
  return bytes.length <= SYNC_COMPILE_MAX
    ? Promise.resolve(new WebAssembly.Module(bytes))
    : WebAssembly.compile(bytes);
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/**
 * Instrumented modules keyed by the original's digest and the parameters that change the rewrite, kept compiled
 * in memory and as bytes on disk, so a second start of the same module skips both the rewrite and (in memory)
 * the compilation. The fuel budget is not in the key: it lives in the host, not in the rewritten code.
 */
export class InstrumentCache {
  readonly #memory = new Map<string, PreparedModule>();

  /** `dir` must belong to the runtime: its contents are trusted to be our own rewrite. */
  constructor(readonly dir?: string) {}

  static key(digest: string, options: InstrumentOptions): string {
    return `${digest}-v${INSTRUMENTER_VERSION}-p${options.maxMemoryPages}-${options.meter ? "m" : "u"}`;
  }

  /** `path` only names the module in errors. */
  async prepare(original: Uint8Array, options: InstrumentOptions, path = "<bytes>"): Promise<PreparedModule> {
    const digest = sha256Hex(original);
    const key = InstrumentCache.key(digest, options);
    const hit = this.#memory.get(key);
    if (hit) {
      // Refresh recency: Map iteration order is insertion order, the oldest entry is evicted first.
      this.#memory.delete(key);
      this.#memory.set(key, hit);
      return { ...hit, source: "memory" };
    }
    const fromDisk = await this.#readDisk(key);
    const prepared: PreparedModule = fromDisk
      ? { ...fromDisk, digest, source: "disk" }
      : await this.#rewrite(original, options, key, digest, path);
    this.#memory.set(key, prepared);
    if (this.#memory.size > MEMORY_ENTRIES) this.#memory.delete(this.#memory.keys().next().value!);
    return prepared;
  }

  async #rewrite(
    original: Uint8Array,
    options: InstrumentOptions,
    key: string,
    digest: string,
    path: string,
  ): Promise<PreparedModule> {
    // Validated before rewriting: a cached rewrite therefore always comes from a valid original.
    assertValidModule(original, path);
    let rewritten: ReturnType<typeof instrumentModule>;
    try {
      rewritten = instrumentModule(original, options);
    } catch (err) {
      if (err instanceof MagikError) Object.assign(err.details, { path });
      throw err;
    }
    const { bytes, importedMemories } = rewritten;
    const module = await compile(bytes);
    this.#writeDisk(key, bytes, importedMemories);
    return { module, importedMemories, digest, source: "rewrite" };
  }

  async #readDisk(key: string): Promise<Omit<PreparedModule, "digest" | "source"> | undefined> {
    if (!this.dir) return undefined;
    try {
      const bytes = readFileSync(join(this.dir, `${key}.wasm`));
      const meta = JSON.parse(readFileSync(join(this.dir, `${key}.json`), "utf8")) as {
        importedMemories: ImportedMemory[];
      };
      return { module: await compile(bytes), importedMemories: meta.importedMemories };
    } catch {
      return undefined; // missing, partial or stale: rewrite again
    }
  }

  /** Best effort: a cache that cannot be written only costs the next start a rewrite. */
  #writeDisk(key: string, bytes: Uint8Array, importedMemories: ImportedMemory[]): void {
    if (!this.dir) return;
    try {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      const tmp = `.${key}.${process.pid}.${Date.now()}`;
      writeFileSync(join(this.dir, `${tmp}.json`), JSON.stringify({ importedMemories }));
      writeFileSync(join(this.dir, `${tmp}.wasm`), bytes);
      // The metadata lands first: a reader that finds the .wasm always finds its .json.
      renameSync(join(this.dir, `${tmp}.json`), join(this.dir, `${key}.json`));
      renameSync(join(this.dir, `${tmp}.wasm`), join(this.dir, `${key}.wasm`));
    } catch {
      // ignored on purpose, see above
    }
  }

  /** Drops the in-memory entries (the disk copies stay). */
  clearMemory(): void {
    this.#memory.clear();
  }
}
