import { join } from "node:path";
import {
  type ContainerState,
  type CreateOptions,
  type DeleteOptions,
  type ExitStatus,
  MagikError,
  type OciRuntime,
  type ResolvedLimits,
  resolveLimits,
  validateContainerId,
  type WasmBundle,
} from "@magikrun/spec";
import { InstrumentCache, type PreparedModule } from "./cache.ts";
import { type WasmExit, WasmInstance } from "./engine.ts";
import { parseSignal } from "./exit-codes.ts";
import { readModuleFile } from "./load.ts";
import { WorkerPool } from "./pool.ts";
import { close, openStdio, type ResolvedStdio } from "./stdio.ts";

export interface WasmRuntimeOptions {
  /** State directory; default $MAGIKRUN_ROOT/wasm, else /run/magikrun-wasm. Holds the default cache dir. */
  root?: string;
  /** Where instrumented modules are kept between processes; default <root>/cache; false for memory only. */
  cacheDir?: string | false;
  /** Overrides of DEFAULT_LIMITS (MAX_WASM_MODULE_SIZE, MAX_WASM_MEMORY_PAGES, DEFAULT_WASM_FUEL...). */
  limits?: Partial<Record<string, number>>;
  /** Fuel per host call; smaller makes kill and timeout react sooner at a small cost. */
  fuelSlice?: number;
  /** Module exporting the `Wasi` class; default this package's WASI preview 1. For tests. */
  wasiUrl?: string;
  /** How long a killed guest blocked in a host call gets before its Worker is terminated (default 2 s). */
  interruptGraceMs?: number;
  /** Workers booted ahead of the next create (default 1); each still serves one instance only. */
  spareWorkers?: number;
}

interface Container {
  id: string;
  bundle: WasmBundle;
  status: "created" | "running" | "stopped";
  instance: WasmInstance;
  stdio: ResolvedStdio;
  prepared: PreparedModule;
  exit?: WasmExit;
}

/** Signals whose default action is to do nothing: a wasm guest has no handlers, so they are no-ops. */
const IGNORED_SIGNALS = new Set(["SIGCHLD", "SIGCONT", "SIGURG", "SIGWINCH"]);

export const OCI_VERSION = "1.2.0";

/**
 * OCI lifecycle for WebAssembly modules. Each container is one instance in its own Worker; `create` validates,
 * instruments (or takes the cached rewrite), compiles and instantiates, `start` runs `_start`.
 *
 * Containers live in this object, not on disk: a Worker cannot outlive its process, so state from a previous
 * process would only describe instances that no longer exist. The `pid` of a created or running container is
 * this process's pid, the process that hosts the instance (OCI requires a pid while the container exists).
 */
export class WasmRuntime implements OciRuntime {
  readonly name = "wasm";
  readonly bundleKinds = ["wasm"] as const;
  readonly root: string;
  readonly limits: ResolvedLimits;
  readonly cache: InstrumentCache;
  readonly #containers = new Map<string, Container>();
  readonly #options: WasmRuntimeOptions;
  readonly #pool: WorkerPool;

  constructor(options: WasmRuntimeOptions = {}) {
    this.#options = options;
    this.root =
      options.root ??
      (process.env.MAGIKRUN_ROOT ? join(process.env.MAGIKRUN_ROOT, "wasm") : "/run/magikrun-wasm");
    this.limits = resolveLimits(options.limits);
    const cacheDir = options.cacheDir ?? join(this.root, "cache");
    this.cache = new InstrumentCache(cacheDir === false ? undefined : cacheDir);
    this.#pool = new WorkerPool({
      ...(options.wasiUrl !== undefined && { wasiUrl: options.wasiUrl }),
      ...(options.spareWorkers !== undefined && { spares: options.spareWorkers }),
    });
  }

  /** Boots the spare Workers now, so that even the first create finds one ready. */
  warm(): void {
    this.#pool.warm();
  }

  /** Ends the spare Workers. Containers are left as they are; delete them first to end them. */
  close(): void {
    this.#pool.close();
  }

  async create(options: CreateOptions): Promise<ContainerState> {
    const id = validateContainerId(options.id, this.limits.MAX_CONTAINER_ID_LEN);
    if (this.#containers.has(id)) {
      throw new MagikError("ContainerAlreadyExists", `container ${id} already exists`, { details: { id } });
    }
    if (this.#containers.size >= this.limits.MAX_CONTAINERS) {
      throw new MagikError("ResourceExhausted", "MAX_CONTAINERS reached", {
        details: {
          limit: "MAX_CONTAINERS",
          max: this.limits.MAX_CONTAINERS,
          value: this.#containers.size + 1,
        },
      });
    }
    const bundle = options.bundle;
    if (bundle.kind !== "wasm") {
      throw new MagikError("InvalidBundle", `the wasm runtime cannot run a ${bundle.kind} bundle`, {
        details: { kind: bundle.kind, path: bundle.path },
        hint: "Use --runtime native (or krun) for this bundle, or let the runtime be chosen automatically.",
      });
    }
    const { fuel, maxMemoryPages } = this.#checkBundle(bundle);
    // A Worker that boots now does so while the module is read and compiled.
    const instance = new WasmInstance(this.#pool.take());
    let stdio: ResolvedStdio | undefined;
    try {
      const bytes = readModuleFile(bundle.modulePath, this.limits);
      const prepared = await this.cache.prepare(bytes, { maxMemoryPages, meter: true }, bundle.modulePath);
      checkDigest(bundle, prepared.digest);
      checkEntryPoint(prepared.module, bundle.modulePath);
      stdio = openStdio(options.stdio);
      await instance.init({
        module: prepared.module,
        importedMemories: prepared.importedMemories,
        args: bundle.args,
        env: bundle.env,
        preopens: bundle.preopens,
        stdin: stdio.stdin,
        stdout: stdio.stdout,
        stderr: stdio.stderr,
        fuel,
        ...(this.#options.fuelSlice !== undefined && { fuelSlice: this.#options.fuelSlice }),
        ...(bundle.timeoutMs !== undefined && { timeoutMs: bundle.timeoutMs }),
        ...(this.#options.interruptGraceMs !== undefined && {
          interruptGraceMs: this.#options.interruptGraceMs,
        }),
      });
      const container: Container = { id, bundle, status: "created", instance, stdio, prepared };
      this.#containers.set(id, container);
      instance.exit.then((exit) => {
        container.status = "stopped";
        container.exit = exit;
        close(container.stdio);
        // The next spare boots now that this instance no longer competes with it for CPU (after the callers
        // waiting for this exit have run: creating a Worker takes the thread for a moment).
        setTimeout(() => this.#pool.warm(), 0).unref();
      });
      return this.#state(container);
    } catch (err) {
      instance.dispose();
      if (stdio) close(stdio);
      throw err;
    }
  }

  async start(id: string): Promise<void> {
    const container = this.#get(id);
    if (container.status !== "created") {
      throw new MagikError("StartFailed", `container ${id} is ${container.status}, not created`, {
        details: { id, status: container.status },
      });
    }
    container.instance.start();
    container.status = "running";
  }

  async state(id: string): Promise<ContainerState> {
    return this.#state(this.#get(id));
  }

  async list(): Promise<ContainerState[]> {
    return [...this.#containers.values()].map((c) => this.#state(c));
  }

  async kill(id: string, signal: string | number): Promise<void> {
    const container = this.#get(id);
    const parsed = parseSignal(signal);
    if (!parsed) {
      throw new MagikError("InvalidInput", `unknown signal ${JSON.stringify(signal)}`, {
        details: { signal },
        hint: "Use a signal name (SIGTERM, KILL) or number (15, 9).",
      });
    }
    if (container.status === "stopped") {
      throw new MagikError("SignalFailed", `container ${id} is not running`, {
        details: { id, status: container.status, signal: parsed.name },
      });
    }
    if (IGNORED_SIGNALS.has(parsed.name)) return;
    if (parsed.name === "SIGSTOP" || parsed.name === "SIGTSTP") {
      throw new MagikError("NotSupported", "wasm containers cannot be stopped and resumed", {
        details: { id, signal: parsed.name },
      });
    }
    // A guest has no signal handlers: every other signal ends it, as its default action would.
    container.instance.kill(parsed);
  }

  async wait(id: string, options: { signal?: AbortSignal } = {}): Promise<ExitStatus> {
    const container = this.#get(id);
    const abort = options.signal;
    if (!abort) return container.instance.exit;
    abort.throwIfAborted();
    return new Promise((resolve, reject) => {
      const onAbort = () =>
        reject(new MagikError("Cancelled", `wait for ${id} was cancelled`, { details: { id } }));
      abort.addEventListener("abort", onAbort, { once: true });
      container.instance.exit.then((exit) => {
        abort.removeEventListener("abort", onAbort);
        resolve(exit);
      });
    });
  }

  async delete(id: string, options: DeleteOptions = {}): Promise<void> {
    const container = this.#get(id);
    if (container.status === "running") {
      if (!options.force) {
        throw new MagikError("DeleteFailed", `container ${id} is running`, {
          details: { id, status: container.status },
        });
      }
      container.instance.kill({ name: "SIGKILL", number: 9 });
      await container.instance.exit;
    }
    container.instance.dispose();
    close(container.stdio);
    this.#containers.delete(id);
  }

  /** The end of a stopped container, with the fuel it used. */
  exitStatus(id: string): WasmExit | undefined {
    return this.#get(id).exit;
  }

  #get(id: string): Container {
    const container = this.#containers.get(id);
    if (!container)
      throw new MagikError("ContainerNotFound", `container ${id} does not exist`, { details: { id } });
    return container;
  }

  #state(c: Container): ContainerState {
    const annotations: Record<string, string> = {
      "run.magikrun.wasm.digest": `sha256:${c.prepared.digest}`,
      "run.magikrun.wasm.cache": c.prepared.source,
    };
    if (c.exit) {
      annotations["run.magikrun.wasm.exit-reason"] = c.exit.reason;
      annotations["run.magikrun.wasm.exit-code"] = String(c.exit.code);
      if (c.exit.fuelConsumed !== undefined)
        annotations["run.magikrun.wasm.fuel-consumed"] = String(c.exit.fuelConsumed);
    }
    return {
      ociVersion: OCI_VERSION,
      id: c.id,
      status: c.status,
      ...(c.status !== "stopped" && { pid: process.pid }),
      bundle: c.bundle.path,
      annotations,
    };
  }

  #checkBundle(bundle: WasmBundle): { fuel: number; maxMemoryPages: number } {
    const positive = (name: string, value: number | undefined) => {
      if (value !== undefined && (!Number.isSafeInteger(value) || value <= 0)) {
        throw new MagikError("InvalidInput", `${name} must be a positive integer, got ${value}`, {
          details: { field: name, value },
        });
      }
    };
    positive("fuel", bundle.fuel);
    positive("maxMemoryPages", bundle.maxMemoryPages);
    positive("timeoutMs", bundle.timeoutMs);
    const max = this.limits.MAX_WASM_MEMORY_PAGES;
    if (bundle.maxMemoryPages !== undefined && bundle.maxMemoryPages > max) {
      throw new MagikError(
        "InvalidInput",
        `maxMemoryPages ${bundle.maxMemoryPages} is over MAX_WASM_MEMORY_PAGES`,
        {
          details: {
            field: "maxMemoryPages",
            value: bundle.maxMemoryPages,
            limit: "MAX_WASM_MEMORY_PAGES",
            max,
          },
          hint: "Raise MAX_WASM_MEMORY_PAGES for this runtime first if this is intended.",
        },
      );
    }
    if (!bundle.path.startsWith("/")) {
      throw new MagikError("InvalidBundle", "bundle path must be absolute", {
        details: { path: bundle.path },
      });
    }
    return {
      fuel: bundle.fuel ?? this.limits.DEFAULT_WASM_FUEL,
      maxMemoryPages: bundle.maxMemoryPages ?? max,
    };
  }
}

function checkDigest(bundle: WasmBundle, digest: string): void {
  if (bundle.moduleDigest === undefined) return;
  const expected = bundle.moduleDigest.replace(/^sha256:/, "");
  if (expected !== digest) {
    throw new MagikError("DigestMismatch", `module ${bundle.modulePath} does not match its digest`, {
      details: { path: bundle.modulePath, expected: bundle.moduleDigest, actual: `sha256:${digest}` },
    });
  }
}

function checkEntryPoint(module: WebAssembly.Module, path: string): void {
  const exports = WebAssembly.Module.exports(module);
  if (!exports.some((e) => e.name === "_start" && e.kind === "function")) {
    throw new MagikError("CreateFailed", `module ${path} has no _start function: it is not a WASI command`, {
      details: { path, exports: exports.map((e) => e.name) },
      hint: "Build the module as a command (wasm32-wasi executable with main), not a reactor or library.",
    });
  }
}
