import type { ResolvedLimits } from "@magikrun/spec/limits";
import type { StateStore } from "../state-store.ts";
import type { Syscall } from "../syscall.ts";

/** What every container operation needs: where state lives, the kernel, and the limits in force. */
export interface RuntimeContext {
  store: StateStore;
  sys: Syscall;
  limits: ResolvedLimits;
  /** Receives documented warnings (accepted settings that are not enforced). */
  warn(message: string): void;
  /** Receives expected, harmless conditions worth a line in the debug log (e.g. an ambient cap not raised). */
  debug(message: string): void;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
