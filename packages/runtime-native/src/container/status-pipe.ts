import { MagikError } from "@magikrun/spec/errors";
import { OP, type PlannedOp } from "../plan-encoder.ts";
import { errnoName, type Syscall } from "../syscall.ts";

/** Messages on the status pipe, as native/launcher.c writes them (struct msg: four i32). */
export const MSG = { PID: 1, ERROR: 2, READY: 3, HOOKS: 4 } as const;
export interface StatusMessage {
  kind: number;
  index: number;
  errno: number;
  value: number;
}

const ETIMEDOUT = 110;
const ECHILD = 10;

/** Reads whole 16-byte messages from the launcher's status pipe. */
export class StatusReader {
  #pending = new Uint8Array(0);
  #eof = false;

  constructor(
    private readonly sys: Syscall,
    private readonly fd: number,
  ) {}

  /** The next message, or undefined at EOF (the container exec'd or died). */
  next(deadline: number): StatusMessage | undefined {
    while (this.#pending.length < 16) {
      if (this.#eof) return undefined;
      const wait = Math.max(0, deadline - Date.now());
      const chunk = this.sys.readTimeout(this.fd, 256, wait);
      if (typeof chunk === "number") {
        if (chunk === -ETIMEDOUT) {
          throw new MagikError("Timeout", "the container did not finish its setup in time", {
            details: { timeoutMs: wait },
          });
        }
        throw new MagikError("CreateFailed", `reading the launcher's status failed: ${errnoName(chunk)}`, {
          details: { errno: errnoName(chunk) },
        });
      }
      if (chunk.length === 0) {
        this.#eof = true;
        continue;
      }
      const merged = new Uint8Array(this.#pending.length + chunk.length);
      merged.set(this.#pending);
      merged.set(chunk, this.#pending.length);
      this.#pending = merged;
    }
    const view = new DataView(this.#pending.buffer, this.#pending.byteOffset, 16);
    const msg = {
      kind: view.getInt32(0, true),
      index: view.getInt32(4, true),
      errno: view.getInt32(8, true),
      value: view.getInt32(12, true),
    };
    this.#pending = this.#pending.slice(16);
    return msg;
  }
}

/** Turns a launcher failure into the user-facing error: which step, which errno. */
export function stepError(
  msg: StatusMessage,
  ops: readonly PlannedOp[],
  code: "CreateFailed" | "ExecFailed" = "CreateFailed",
): MagikError {
  const step =
    msg.index >= 0 ? (ops[msg.index]?.label ?? `step ${msg.index}`) : "clone the container process";
  const errno = errnoName(msg.errno);
  if (ops[msg.index]?.op === OP.HOOK && (msg.errno === ECHILD || msg.errno === ETIMEDOUT)) {
    // A hook run by the container's process: ECHILD carries its exit status, ETIMEDOUT its timeout.
    const timeoutMs = Number(ops[msg.index]!.ints[1]);
    const what =
      msg.errno === ETIMEDOUT ? `timed out after ${timeoutMs / 1000}s` : `exited with ${msg.value}`;
    return new MagikError(code, `${step} ${what}`, {
      details: { step, exitCode: msg.errno === ECHILD ? msg.value : null, timedOut: msg.errno === ETIMEDOUT },
      hint: "Fix or remove the hook in config.json.",
    });
  }
  const hints: Record<string, string> = {
    ENOENT: "A path in config.json (program, cwd, mount source or destination) does not exist.",
    EACCES: "Permission denied: check file modes and the process user.",
    EPERM: "The kernel refused the operation: check capabilities and namespaces.",
  };
  return new MagikError(code, `container setup failed at "${step}": ${errno}`, {
    details: { step, errno, errnoNumber: msg.errno, operation: msg.value },
    hint:
      hints[errno] ??
      (code === "CreateFailed" ? "Check the bundle's config.json." : "Check the exec'd process."),
  });
}
