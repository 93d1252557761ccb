/**
 * Runs one WebAssembly instance on its own thread: its own store, memory and WASI state, nothing shared with
 * other instances except the control buffer its host uses to interrupt it. Loaded by engine.ts as a Worker.
 */

import { closeSync, openSync } from "node:fs";
import { EXIT_CODE, signalName } from "./exit-codes.ts";
import {
  Control,
  FUEL_EXPORT,
  type HostMessage,
  type InitMessage,
  Interrupt,
  type WorkerExit,
  type WorkerMessage,
} from "./protocol.ts";
import { WARM_UP_MODULE } from "./warm-up.ts";

interface WasiLike {
  imports: Record<string, Record<string, unknown>>;
  start(instance: WebAssembly.Instance): number;
  /** Binds an imported memory (modules that export theirs are bound by `start`). */
  bind?(instance: WebAssembly.Instance, memory?: WebAssembly.Memory): void;
  /** Closes the host fds the guest opened. */
  close?(): void;
}
type WasiConstructor = new (options: {
  args: string[];
  env: string[];
  preopens: InitMessage["preopens"];
  stdin: number | "ignore";
  stdout: number;
  stderr: number;
}) => WasiLike;

// Bun's documented way to type a Worker's global scope.
declare const self: Worker;

class FuelExhausted extends Error {}

class Interrupted extends Error {
  constructor(
    readonly interrupt: number,
    readonly signal: number,
  ) {
    super("interrupted");
  }
}

/**
 * The host side of metering. The module's code spends a slice of fuel with no host involvement and calls
 * `refuel` when it runs out: the one place where the budget, a kill or a timeout can stop it.
 */
class FuelMeter {
  /** Fuel handed out so far, including what is left in the module's counter. */
  #granted = 0;
  #counter: WebAssembly.Global | undefined;
  /** Set when refuel ended the run: the consumption it computed then. */
  #final: number | undefined;

  constructor(
    readonly total: number,
    readonly slice: number,
    readonly control: Int32Array,
  ) {}

  attach(counter: WebAssembly.Global | undefined): void {
    this.#counter = counter;
  }

  refuel(current: bigint): bigint {
    const consumed = this.#granted - Number(current);
    const interrupt = Atomics.load(this.control, Control.Interrupt);
    if (interrupt !== Interrupt.None) {
      this.#final = consumed;
      throw new Interrupted(interrupt, Atomics.load(this.control, Control.Signal));
    }
    const remaining = this.total - consumed;
    if (remaining < 0) {
      this.#final = consumed;
      throw new FuelExhausted("fuel exhausted");
    }
    const slice = Math.min(this.slice, remaining);
    this.#granted = consumed + slice;
    return BigInt(slice);
  }

  /**
   * Exact when the run ended through refuel or a return; after a trap inside a function that keeps the counter
   * in a local, the global may lag by what that function spent since its last call.
   */
  consumed(): number {
    if (this.#final !== undefined) return this.#final;
    const left = this.#counter ? Number(this.#counter.value as bigint) : 0;
    return this.#granted - Math.max(left, 0);
  }
}

let prepared: { instance: WebAssembly.Instance; wasi: WasiLike; meter: FuelMeter | undefined } | undefined;

function post(message: WorkerMessage): void {
  self.postMessage(message);
}

let booted: Promise<WasiConstructor> | undefined;

async function init(msg: InitMessage): Promise<void> {
  if (!booted) throw new Error("init before boot");
  instantiate(await booted, msg);
}

function instantiate(Wasi: WasiConstructor, msg: InitMessage): void {
  const wasi = new Wasi({
    args: msg.args,
    env: msg.env,
    preopens: msg.preopens,
    stdin: msg.stdin,
    stdout: msg.stdout,
    stderr: msg.stderr,
  });
  const imports: Record<string, Record<string, unknown>> = { ...wasi.imports };
  let importedMemory: WebAssembly.Memory | undefined;
  for (const m of msg.importedMemories) {
    // A derived object keeps the WASI namespace intact, including members it resolves lazily.
    const namespace: Record<string, unknown> = Object.create(imports[m.module] ?? null);
    imports[m.module] = namespace;
    importedMemory = new WebAssembly.Memory({
      initial: m.type.minPages,
      maximum: m.type.maxPages,
      shared: m.type.shared,
    });
    namespace[m.name] = importedMemory;
  }
  const meter =
    msg.fuel === null ? undefined : new FuelMeter(msg.fuel, msg.fuelSlice, new Int32Array(msg.control));
  if (meter) imports.magikrun = { refuel: (current: bigint) => meter.refuel(current) };
  const missing = WebAssembly.Module.imports(msg.module)
    .filter((i) => imports[i.module]?.[i.name] === undefined)
    .map((i) => `${i.module}.${i.name}`);
  if (missing.length > 0) {
    throw Object.assign(new Error(`it imports what this runtime does not provide: ${missing.join(", ")}`), {
      code: "CreateFailed",
      details: { missing, provided: Object.keys(imports) },
    });
  }
  const instance = new WebAssembly.Instance(
    msg.module,
    imports as ConstructorParameters<typeof WebAssembly.Instance>[1],
  );
  meter?.attach(instance.exports[FUEL_EXPORT] as WebAssembly.Global | undefined);
  if (importedMemory) wasi.bind?.(instance, importedMemory);
  prepared = { instance, wasi, meter };
}

function run(): WorkerExit {
  if (!prepared) return { code: EXIT_CODE.trap, reason: "trap", message: "instance was not initialised" };
  const { instance, wasi, meter } = prepared;
  const withFuel = (exit: WorkerExit): WorkerExit =>
    meter ? { ...exit, fuelConsumed: meter.consumed() } : exit;
  try {
    return withFuel({ code: wasi.start(instance), reason: "exited" });
  } catch (err) {
    return withFuel(describeAbort(err));
  } finally {
    wasi.close?.();
  }
}

function describeAbort(err: unknown): WorkerExit {
  if (err instanceof FuelExhausted) {
    return { code: EXIT_CODE.fuelExhausted, reason: "fuel-exhausted", message: "fuel exhausted" };
  }
  if (err instanceof Interrupted) {
    if (err.interrupt === Interrupt.Timeout) {
      return { code: EXIT_CODE.timeout, reason: "timeout", message: "wall-clock timeout" };
    }
    const signal = signalName(err.signal);
    return { code: 128 + err.signal, reason: "signaled", signal, message: `killed by ${signal}` };
  }
  const message = err instanceof Error ? err.message : String(err);
  // JSC reports call-stack exhaustion as a RangeError rather than a RuntimeError; both are guest traps.
  return { code: EXIT_CODE.trap, reason: "trap", message: `wasm trap: ${message}` };
}

function errorMessage(err: unknown): WorkerMessage {
  const e = err as { code?: unknown; message?: unknown; details?: unknown; name?: unknown };
  const isLink = err instanceof WebAssembly.LinkError;
  return {
    type: "error",
    code: isLink ? "CreateFailed" : typeof e?.code === "string" ? (e.code as "CreateFailed") : "CreateFailed",
    // JSC appends the JS expression that failed, which only names our own call.
    message: `cannot instantiate the module: ${String(e?.message ?? err).replace(/ \(evaluating '.*'\)$/, "")}`,
    details:
      typeof e?.details === "object" && e.details !== null ? (e.details as Record<string, unknown>) : {},
  };
}

/**
 * Runs WARM_UP_MODULE through instantiate and run, as an instance would, so that the first real instance finds
 * the code it runs compiled. Best effort: a failure here only means a colder start, never a failed boot.
 */
function warmUp(Wasi: WasiConstructor): void {
  let devNull: number | undefined;
  try {
    devNull = openSync("/dev/null", "w");
    instantiate(Wasi, {
      type: "init",
      module: new WebAssembly.Module(WARM_UP_MODULE),
      importedMemories: [],
      args: ["warm-up"],
      env: [],
      preopens: [],
      stdin: "ignore",
      stdout: devNull,
      stderr: devNull,
      fuel: 1_000,
      fuelSlice: 1_000,
      control: new SharedArrayBuffer(Control.Length * 4),
    });
    run();
  } catch {
    // see above
  } finally {
    prepared = undefined;
    if (devNull !== undefined) closeSync(devNull);
  }
}

self.onmessage = (event: MessageEvent<HostMessage>) => {
  const msg = event.data;
  if (msg.type === "boot") {
    booted = import(msg.wasiUrl).then((m: { Wasi: WasiConstructor }) => {
      warmUp(m.Wasi);
      return m.Wasi;
    });
    booted.then(
      () => post({ type: "booted" }),
      (err) => post({ type: "boot-failed", message: `cannot load WASI: ${String(err?.message ?? err)}` }),
    );
  } else if (msg.type === "init") {
    init(msg).then(
      () => post({ type: "ready" }),
      (err) => post(errorMessage(err)),
    );
  } else if (msg.type === "start") {
    post({ type: "exit", exit: run() });
  }
};
