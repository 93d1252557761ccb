import { type ExitStatus, MagikError } from "@magikrun/spec";
import { EXIT_CODE } from "./exit-codes.ts";
import type { FreshWorker } from "./pool.ts";
import {
  Control,
  type InitMessage,
  type InstanceSetup,
  Interrupt,
  type WorkerExit,
  type WorkerMessage,
} from "./protocol.ts";

/** Fuel handed to the module per host call: large enough to keep the call rare, small enough for a fast kill. */
export const DEFAULT_FUEL_SLICE = 1_000_000;
/**
 * How long an interrupted instance may take to reach a check point before its Worker is terminated. Only a guest
 * blocked inside a host call (a blocking read, a long sleep) can be that late: metered code checks every slice.
 */
export const INTERRUPT_GRACE_MS = 2_000;

export interface InstanceSpec extends InstanceSetup {
  fuelSlice?: number;
  timeoutMs?: number;
  /** How long an interrupted guest may take to stop before its Worker is terminated; default INTERRUPT_GRACE_MS. */
  interruptGraceMs?: number;
}

export interface WasmExit extends ExitStatus {
  fuelConsumed?: number;
}

type Phase = "booting" | "ready" | "running" | "exited";

/**
 * One instance in its own fresh Worker (from a WorkerPool, which may have booted it ahead of time): `init`
 * instantiates, `start` runs `_start`, `exit` settles once, with the end. The Worker ends with the instance.
 */
export class WasmInstance {
  readonly exit: Promise<WasmExit>;
  #phase: Phase = "booting";
  readonly #worker: Worker;
  readonly #control = new Int32Array(new SharedArrayBuffer(Control.Length * 4));
  #settle!: (exit: WasmExit) => void;
  #onReady: ((error?: MagikError) => void) | undefined;
  #timers: ReturnType<typeof setTimeout>[] = [];
  #timeoutMs: number | undefined;
  #graceMs = INTERRUPT_GRACE_MS;
  readonly #booted: Promise<void>;

  constructor(fresh: FreshWorker) {
    this.exit = new Promise((resolve) => {
      this.#settle = resolve;
    });
    this.#worker = fresh.worker;
    this.#booted = fresh.booted;
    this.#worker.addEventListener("message", (event: MessageEvent<WorkerMessage>) =>
      this.#receive(event.data),
    );
    this.#worker.addEventListener("error", (event) => this.#fail(`worker failed: ${event.message}`));
  }

  get phase(): Phase {
    return this.#phase;
  }

  async init(spec: InstanceSpec): Promise<void> {
    try {
      await this.#booted;
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.#fail(message);
      throw new MagikError("RuntimeUnavailable", `the wasm worker could not start: ${message}`, {
        details: { reason: message },
      });
    }
    if (this.#phase !== "booting") {
      throw new MagikError("CreateFailed", `instance is ${this.#phase}, it cannot be initialised`, {
        details: { phase: this.#phase },
      });
    }
    const message: InitMessage = {
      type: "init",
      module: spec.module,
      importedMemories: spec.importedMemories,
      args: spec.args,
      env: spec.env,
      preopens: spec.preopens,
      stdin: spec.stdin,
      stdout: spec.stdout,
      stderr: spec.stderr,
      fuel: spec.fuel,
      fuelSlice: spec.fuelSlice ?? DEFAULT_FUEL_SLICE,
      control: this.#control.buffer as SharedArrayBuffer,
    };
    this.#timeoutMs = spec.timeoutMs;
    this.#graceMs = spec.interruptGraceMs ?? INTERRUPT_GRACE_MS;
    return new Promise((resolve, reject) => {
      this.#onReady = (error) => (error ? reject(error) : resolve());
      this.#worker.postMessage(message);
    });
  }

  start(): void {
    if (this.#phase !== "ready") {
      throw new MagikError("StartFailed", `instance is ${this.#phase}, not ready`, {
        details: { phase: this.#phase },
      });
    }
    this.#phase = "running";
    this.#worker.postMessage({ type: "start" });
    if (this.#timeoutMs !== undefined) {
      this.#timers.push(setTimeout(() => this.#interrupt(Interrupt.Timeout, 0), this.#timeoutMs));
    }
  }

  /** Stops the instance. Before start the Worker is idle and is simply ended; while running, see #interrupt. */
  kill(signal: { name: string; number: number }): void {
    if (this.#phase === "exited") return;
    if (this.#phase !== "running") {
      this.#finish({
        code: 128 + signal.number,
        reason: "signaled",
        signal: signal.name,
        message: "killed before start",
      });
      return;
    }
    this.#interrupt(Interrupt.Signal, signal.number);
  }

  /** Ends the Worker without waiting for an exit; for deleting an instance that never ran or already ended. */
  dispose(): void {
    if (this.#phase !== "exited")
      this.#finish({ code: EXIT_CODE.trap, reason: "killed", message: "disposed" });
  }

  /**
   * Raises the interrupt the metered code reads at its next refuel. If the guest does not get there in time (it
   * is blocked in a host call), the Worker is terminated as a last resort and the end reported as "killed".
   */
  #interrupt(kind: number, signal: number): void {
    if (this.#phase !== "running" || Atomics.load(this.#control, Control.Interrupt) !== Interrupt.None)
      return;
    Atomics.store(this.#control, Control.Signal, signal);
    Atomics.store(this.#control, Control.Interrupt, kind);
    this.#timers.push(
      setTimeout(() => {
        this.#finish({
          code: kind === Interrupt.Timeout ? EXIT_CODE.timeout : 128 + signal,
          reason: "killed",
          message: "the guest did not reach an interrupt point in time; its worker was terminated",
        });
      }, this.#graceMs),
    );
  }

  #receive(message: WorkerMessage): void {
    if (message.type === "booted" || message.type === "boot-failed") return; // the pool's business
    if (message.type === "ready") {
      this.#phase = "ready";
      this.#onReady?.();
    } else if (message.type === "error") {
      const error = new MagikError(message.code, message.message, { details: message.details });
      this.#onReady?.(error);
      this.#finish({ code: EXIT_CODE.trap, reason: "trap", message: message.message });
    } else {
      this.#finish(toExitStatus(message.exit));
    }
  }

  #fail(message: string): void {
    this.#onReady?.(new MagikError("CreateFailed", message));
    this.#finish({ code: EXIT_CODE.trap, reason: "trap", message });
  }

  #finish(exit: WasmExit): void {
    if (this.#phase === "exited") return;
    this.#phase = "exited";
    this.#onReady = undefined;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#worker.terminate();
    this.#settle(exit);
  }
}

function toExitStatus(exit: WorkerExit): WasmExit {
  const status: WasmExit = { code: exit.code, reason: exit.reason };
  if (exit.signal !== undefined) status.signal = exit.signal;
  if (exit.message !== undefined) status.message = exit.message;
  if (exit.fuelConsumed !== undefined) status.fuelConsumed = exit.fuelConsumed;
  return status;
}
