import { constants } from "node:os";

/** Shell-style codes for ends that are not a proc_exit: a trap is reported like an abort, as wasmtime does. */
export const EXIT_CODE = {
  trap: 128 + constants.signals.SIGABRT,
  fuelExhausted: 128 + constants.signals.SIGABRT,
  /** What timeout(1) returns. */
  timeout: 124,
} as const;

/** Accepts "SIGTERM", "TERM", "15" or 15; returns the canonical name and number, or undefined. */
export function parseSignal(signal: string | number): { name: string; number: number } | undefined {
  const table = constants.signals as Record<string, number>;
  if (typeof signal === "number" || /^\d+$/.test(signal)) {
    const number = Number(signal);
    const name = Object.keys(table).find((n) => table[n] === number);
    return name === undefined ? undefined : { name, number };
  }
  const name = signal.toUpperCase().startsWith("SIG") ? signal.toUpperCase() : `SIG${signal.toUpperCase()}`;
  const number = table[name];
  return number === undefined ? undefined : { name, number };
}

export function signalName(number: number): string {
  return parseSignal(number)?.name ?? `signal ${number}`;
}
