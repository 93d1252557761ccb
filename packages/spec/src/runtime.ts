import { MagikError } from "./errors.ts";
import { DEFAULT_LIMITS } from "./limits.ts";
import type { Process, RuntimeConfig } from "./runtime-config.ts";
import type { ContainerState } from "./state.ts";

/** The OCI runtime-spec version magikrun writes into the documents it produces (re-exported by runtime-config). */
export const OCI_RUNTIME_SPEC_VERSION = "1.2.0";

/**
 * The interfaces the layers meet at. A runtime backend (native, wasm, microVM) implements `OciRuntime`; callers
 * (CLI, pod layer) pick one by the bundle's `kind` through a `RuntimeRegistry`, never by branching on backends.
 */

/** An OCI runtime bundle: a directory holding config.json and the rootfs it names. */
export interface OciBundle {
  kind: "oci";
  /** Absolute path of the bundle directory. */
  path: string;
  config: RuntimeConfig;
}

export interface WasiPreopen {
  /** Path the module sees, e.g. "/" or "/data". */
  guestPath: string;
  /** Host directory it maps to. */
  hostPath: string;
  readonly?: boolean;
}

export interface WasmBundle {
  kind: "wasm";
  path: string;
  /** Absolute path of the .wasm module file. */
  modulePath: string;
  /** sha256 of the module, when known (cache key for the instrumented module). */
  moduleDigest?: string;
  args: string[];
  env: string[];
  preopens: WasiPreopen[];
  /** Instruction budget; default DEFAULT_WASM_FUEL. */
  fuel?: number;
  /** Upper bound on linear memory, in 64 KiB pages. */
  maxMemoryPages?: number;
  /** Wall-clock limit for the whole run. */
  timeoutMs?: number;
}

export interface MicroVmBundle {
  kind: "microvm";
  path: string;
  /** Directory holding the guest's root filesystem. */
  rootfs: string;
  args: string[];
  env: string[];
  cwd: string;
  vcpus?: number;
  memoryMiB?: number;
}

export type Bundle = OciBundle | WasmBundle | MicroVmBundle;
export type BundleKind = Bundle["kind"];

/** Where a container's standard stream goes. */
export type StdioTarget = "inherit" | "ignore" | { path: string; append?: boolean } | { fd: number };

export interface StdioSpec {
  stdin?: StdioTarget;
  stdout?: StdioTarget;
  stderr?: StdioTarget;
}

export interface CreateOptions {
  id: string;
  bundle: Bundle;
  stdio?: StdioSpec;
  /** runc's --console-socket: receives the pty master when process.terminal is true. */
  consoleSocket?: string;
  /** runc's --pid-file. */
  pidFile?: string;
}

export type ExitReason = "exited" | "signaled" | "oom" | "fuel-exhausted" | "timeout" | "trap" | "killed";

export interface ExitStatus {
  /** Shell-style code: the exit code, or 128 + signal number. */
  code: number;
  reason: ExitReason;
  signal?: string;
  message?: string;
}

export interface ExecOptions {
  process: Partial<Process> & { args: string[] };
  stdio?: StdioSpec;
  detach?: boolean;
  consoleSocket?: string;
  pidFile?: string;
  timeoutMs?: number;
}

export interface ExecResult {
  pid: number;
  /** Settles when the exec'd process exits (undefined when detached). */
  exit?: Promise<ExitStatus>;
}

export interface KillOptions {
  /** Signal every process of the container (runc's --all). */
  all?: boolean;
}

export interface DeleteOptions {
  /** Kill a running container first (runc's --force). */
  force?: boolean;
}

export interface OciRuntime {
  /** Backend name as the CLI spells it: "native", "wasm", "krun". */
  readonly name: string;
  /** Bundle kinds this backend can run. */
  readonly bundleKinds: readonly BundleKind[];
  create(options: CreateOptions): Promise<ContainerState>;
  start(id: string): Promise<void>;
  state(id: string): Promise<ContainerState>;
  kill(id: string, signal: string | number, options?: KillOptions): Promise<void>;
  delete(id: string, options?: DeleteOptions): Promise<void>;
  list(): Promise<ContainerState[]>;
  exec?(id: string, options: ExecOptions): Promise<ExecResult>;
  wait?(id: string, options?: { signal?: AbortSignal }): Promise<ExitStatus>;
  pause?(id: string): Promise<void>;
  resume?(id: string): Promise<void>;
}

/** Chooses a backend by bundle kind (or by name) from configuration, so callers never branch on backends. */
export class RuntimeRegistry {
  readonly #byName = new Map<string, OciRuntime>();

  register(runtime: OciRuntime): this {
    this.#byName.set(runtime.name, runtime);
    return this;
  }

  byName(name: string): OciRuntime {
    const runtime = this.#byName.get(name);
    if (!runtime) {
      throw new MagikError("RuntimeUnavailable", `no runtime named ${JSON.stringify(name)}`, {
        details: { runtime: name, available: [...this.#byName.keys()] },
      });
    }
    return runtime;
  }

  forBundle(bundle: Pick<Bundle, "kind">): OciRuntime {
    for (const runtime of this.#byName.values()) {
      if (runtime.bundleKinds.includes(bundle.kind)) return runtime;
    }
    throw new MagikError("RuntimeUnavailable", `no runtime can run a ${bundle.kind} bundle`, {
      details: { kind: bundle.kind, available: [...this.#byName.keys()] },
    });
  }

  names(): string[] {
    return [...this.#byName.keys()];
  }
}

const CONTAINER_ID = /^[A-Za-z0-9_][A-Za-z0-9_.+-]*$/;

/** Container ids become directory and cgroup names: refuse anything that could escape or confuse them. */
export function validateContainerId(
  id: unknown,
  maxLen: number = DEFAULT_LIMITS.MAX_CONTAINER_ID_LEN,
): string {
  if (typeof id !== "string" || id.length === 0 || id.length > maxLen || !CONTAINER_ID.test(id)) {
    throw new MagikError("InvalidContainerId", `invalid container id ${JSON.stringify(id)}`, {
      details: { id, maxLength: maxLen },
    });
  }
  return id;
}
