import type { ExitReason, MagikErrorCode, WasiPreopen } from "@magikrun/spec";
import type { ImportedMemory } from "./instrument.ts";

/**
 * Messages between the host and the Worker that runs one instance. The host can also reach a running instance
 * through `control`, a SharedArrayBuffer the metered code's `refuel` reads: the only way in while the Worker's
 * thread is busy inside WebAssembly.
 */

/** Export name of the fuel counter the instrumenter adds, read by the Worker to report fuel consumed. */
export const FUEL_EXPORT = "magikrun:fuel";

/** Int32 slots of the control buffer. */
export const Control = {
  /** 0 while running undisturbed; otherwise an Interrupt value. */
  Interrupt: 0,
  /** Signal number for Interrupt.Signal. */
  Signal: 1,
  Length: 2,
} as const;

export const Interrupt = {
  None: 0,
  Signal: 1,
  Timeout: 2,
} as const;

/** What a Worker needs to instantiate one module and give it its WASI world. */
export interface InstanceSetup {
  module: WebAssembly.Module;
  importedMemories: ImportedMemory[];
  args: string[];
  env: string[];
  preopens: WasiPreopen[];
  stdin: number | "ignore";
  stdout: number;
  stderr: number;
  /** Total fuel, or null to run a module that was not metered (then only the Worker can be terminated). */
  fuel: number | null;
}

export interface InitMessage extends InstanceSetup {
  type: "init";
  fuelSlice: number;
  control: SharedArrayBuffer;
}

export interface BootMessage {
  type: "boot";
  /** Module exporting the `Wasi` class (the real one, or a test stand-in with the same interface). */
  wasiUrl: string;
}

export interface StartMessage {
  type: "start";
}

export type HostMessage = BootMessage | InitMessage | StartMessage;

export interface WorkerExit {
  code: number;
  reason: ExitReason;
  signal?: string;
  message?: string;
  /** Fuel units charged, for metered modules. */
  fuelConsumed?: number;
}

export type WorkerMessage =
  | { type: "booted" }
  | { type: "boot-failed"; message: string }
  | { type: "ready" }
  | { type: "error"; code: MagikErrorCode; message: string; details: Record<string, unknown> }
  | { type: "exit"; exit: WorkerExit };
