/**
 * `magikrun wasm run`: runs a WASI command module in the foreground through the wasm runtime, with its limits
 * as options, and exits with the module's exit status. The instance lives in this process (a Worker cannot
 * outlive it), so there is no detached mode; SIGINT and SIGTERM sent to magikrun are passed to the module.
 */
import { basename, dirname, join, resolve } from "node:path";
import { type WasmExit, WasmRuntime } from "@magikrun/runtime-wasm";
import { MagikError, type WasiPreopen, type WasmBundle } from "@magikrun/spec";
import type { GlobalOptions } from "../cli.ts";

const USAGE = `usage: magikrun wasm run [options] MODULE.wasm [ARGS...]

  --fuel N                 instruction budget (default DEFAULT_WASM_FUEL = 1e9)
  --timeout MS             wall-clock limit
  --max-memory-pages N     linear memory cap, in 64 KiB pages (default and max MAX_WASM_MEMORY_PAGES)
  --dir HOST[:GUEST[:ro]]  preopen a host directory (repeatable; GUEST defaults to HOST)
  --env K=V                environment variable (repeatable)
  --json                   print the exit status as JSON on stdout once the module has ended

Options go before MODULE; everything after it is passed to the module. Exit status: the module's exit code,
124 on timeout, 134 on a trap or exhausted fuel, 128+N when killed by signal N.`;

export interface WasmRunOptions {
  bundle: WasmBundle;
  json: boolean;
}

function invalid(message: string, details: Record<string, unknown>): MagikError {
  return new MagikError("InvalidInput", message, { details, hint: USAGE.split("\n")[0]! });
}

function positiveInteger(flag: string, raw: string | undefined): number {
  const value = Number(raw);
  if (raw === undefined || !/^\d+(e\d+)?$/.test(raw) || !Number.isSafeInteger(value) || value <= 0) {
    throw invalid(`${flag} needs a positive integer, got ${JSON.stringify(raw)}`, {
      option: flag,
      value: raw,
    });
  }
  return value;
}

function parseDir(raw: string): WasiPreopen {
  const [host, guest, mode, ...rest] = raw.split(":");
  if (!host || rest.length > 0 || (mode !== undefined && mode !== "ro" && mode !== "rw")) {
    throw invalid(`--dir takes HOST[:GUEST[:ro]], got ${JSON.stringify(raw)}`, {
      option: "--dir",
      value: raw,
    });
  }
  const preopen: WasiPreopen = { hostPath: resolve(host), guestPath: guest || host };
  if (mode === "ro") preopen.readonly = true;
  return preopen;
}

/** Options stop at the module path: what follows belongs to the module, dashes included. */
export function parseRunArgs(args: string[], globals: Pick<GlobalOptions, "json">): WasmRunOptions {
  const env: string[] = [];
  const preopens: WasiPreopen[] = [];
  const limits: Partial<Pick<WasmBundle, "fuel" | "timeoutMs" | "maxMemoryPages">> = {};
  let json = globals.json;
  let i = 0;
  for (; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--") {
      i++;
      break;
    }
    if (!arg.startsWith("-") || arg === "-") break;
    const eq = arg.indexOf("=");
    const flag = arg.startsWith("--") && eq !== -1 ? arg.slice(0, eq) : arg;
    const value = (): string => {
      const v = eq !== -1 && flag !== arg ? arg.slice(eq + 1) : args[++i];
      if (v === undefined) throw invalid(`${flag} needs a value`, { option: flag });
      return v;
    };
    switch (flag) {
      case "--fuel":
        limits.fuel = positiveInteger(flag, value());
        break;
      case "--timeout":
        limits.timeoutMs = positiveInteger(flag, value());
        break;
      case "--max-memory-pages":
        limits.maxMemoryPages = positiveInteger(flag, value());
        break;
      case "--dir":
        preopens.push(parseDir(value()));
        break;
      case "--env": {
        const v = value();
        if (!/^[^=]+=/.test(v))
          throw invalid(`--env takes K=V, got ${JSON.stringify(v)}`, { option: flag, value: v });
        env.push(v);
        break;
      }
      case "--json":
        json = true;
        break;
      default:
        throw invalid(`unknown option ${flag}`, { option: flag });
    }
  }
  const module = args[i];
  if (module === undefined) throw invalid("missing MODULE.wasm", { expected: "MODULE.wasm" });
  const modulePath = resolve(module);
  return {
    json,
    bundle: {
      kind: "wasm",
      path: dirname(modulePath),
      modulePath,
      args: [basename(module), ...args.slice(i + 1)],
      env,
      preopens,
      ...limits,
    },
  };
}

export async function run(command: string, args: string[], globals: GlobalOptions): Promise<number> {
  const [sub, ...rest] = args;
  if (
    sub === undefined ||
    sub === "--help" ||
    sub === "-h" ||
    (rest.includes("--help") && rest.indexOf("--help") < 1)
  ) {
    console.log(USAGE);
    return sub === undefined ? 2 : 0;
  }
  if (sub !== "run") {
    throw new MagikError("InvalidInput", `unknown command ${command} ${sub}`, {
      details: { command: `${command} ${sub}` },
      hint: USAGE.split("\n")[0]!,
    });
  }
  const options = parseRunArgs(rest, globals);
  // One instance per process: a spare Worker booting beside it would only cost CPU.
  const runtime = new WasmRuntime({
    spareWorkers: 0,
    ...(globals.root && { root: join(globals.root, "wasm") }),
  });
  const id = `wasm-${process.pid}-${Date.now().toString(36)}`;
  const forward = (signal: NodeJS.Signals) => {
    runtime.kill(id, signal).catch(() => {
      // already ended: nothing to forward to
    });
  };
  try {
    await runtime.create({ id, bundle: options.bundle });
    process.on("SIGINT", forward);
    process.on("SIGTERM", forward);
    await runtime.start(id);
    const exit: WasmExit = await runtime.wait(id);
    if (options.json) {
      console.log(JSON.stringify({ id, exit }));
    } else if (exit.reason !== "exited") {
      console.error(`magikrun: wasm: ${exit.reason}${exit.message ? `: ${exit.message}` : ""}`);
    }
    return exit.code;
  } finally {
    process.off("SIGINT", forward);
    process.off("SIGTERM", forward);
    await runtime.delete(id, { force: true }).catch(() => {
      // create failed: there is nothing to delete
    });
    runtime.close();
  }
}
