/**
 * Wasm bundles behind the runc-style `run`: chosen by `--runtime wasm`, or automatically when the bundle's
 * program is a WebAssembly module (wasm magic, or the `module.wasm.image/variant` / `run.oci.handler` annotations),
 * as runwasi does. A wasm instance lives in a Worker of this process, so it runs in the foreground only: `create`
 * (which must leave the container behind when the CLI exits) is refused for wasm.
 */
import type { WasmExit } from "@magikrun/runtime-wasm";
import type { OciBundle, WasmBundle } from "@magikrun/spec";
import { MagikError } from "@magikrun/spec/errors";

export type RuntimeChoice = "auto" | "native" | "wasm";

export function runtimeChoice(value: string | undefined): RuntimeChoice {
  if (value === undefined) return "auto";
  if (value === "auto" || value === "native" || value === "wasm") return value;
  throw new MagikError("InvalidInput", `unknown runtime ${JSON.stringify(value)}`, {
    details: { runtime: value },
    hint: "--runtime is native, wasm or auto (wasm when the bundle's program is a wasm module).",
  });
}

/** The wasm reading of `bundle` when the choice (or the bundle itself) says wasm; undefined for native. */
export async function selectWasm(bundle: OciBundle, choice: RuntimeChoice): Promise<WasmBundle | undefined> {
  if (choice === "native") return undefined;
  // The bundle reader alone: the engine (Workers, WASI) loads only when the bundle is wasm.
  const { wasmBundleFromOci } = await import("@magikrun/runtime-wasm/oci-bundle");
  const wasm = wasmBundleFromOci(bundle);
  if (!wasm && choice === "wasm") {
    throw new MagikError(
      "InvalidBundle",
      "--runtime wasm: the bundle's program is not a WebAssembly module",
      {
        details: { bundle: bundle.path, program: bundle.config.process?.args?.[0] },
        hint: "process.args[0] must name a .wasm module inside the rootfs.",
      },
    );
  }
  return wasm;
}

/**
 * create → start → wait → delete of one wasm instance in this process, forwarding SIGINT/SIGTERM to it, as a
 * foreground `runc run` does. Shared by `magikrun run` and `magikrun wasm run`.
 */
export async function runWasmInstance(
  id: string,
  bundle: WasmBundle,
  options: { root?: string } = {},
): Promise<WasmExit> {
  const { WasmRuntime } = await import("@magikrun/runtime-wasm");
  // One instance per process: a spare Worker booting beside it would only cost CPU.
  const runtime = new WasmRuntime({ spareWorkers: 0, ...(options.root && { root: options.root }) });
  const forward = (signal: NodeJS.Signals) => {
    runtime.kill(id, signal).catch(() => {
      // already ended: nothing to forward to
    });
  };
  try {
    await runtime.create({ id, bundle });
    process.on("SIGINT", forward);
    process.on("SIGTERM", forward);
    await runtime.start(id);
    return await runtime.wait(id);
  } finally {
    process.off("SIGINT", forward);
    process.off("SIGTERM", forward);
    await runtime.delete(id, { force: true }).catch(() => {
      // create failed: there is nothing to delete
    });
    runtime.close();
  }
}

/** `magikrun run` of a wasm bundle; returns the exit code. */
export async function runWasmForeground(id: string, bundle: WasmBundle, command: string): Promise<number> {
  if (command !== "run") {
    throw new MagikError(
      "NotSupported",
      `${command} of a wasm bundle: wasm containers run in the foreground`,
      {
        details: { id, command, runtime: "wasm" },
        hint: "Use 'magikrun run ID' (or 'magikrun wasm run'); a wasm instance cannot outlive the CLI process.",
      },
    );
  }
  const exit = await runWasmInstance(id, bundle);
  if (exit.reason !== "exited") {
    console.error(`magikrun: wasm: ${exit.reason}${exit.message ? `: ${exit.message}` : ""}`);
  }
  return exit.code;
}
