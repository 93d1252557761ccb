/**
 * `magikrun wasm run`: runs a WASI command module in the foreground through the wasm runtime, with its limits
 * as options, and exits with the module's exit status. The instance lives in this process (a Worker cannot
 * outlive it), so there is no detached mode; SIGINT and SIGTERM sent to magikrun are passed to the module.
 * The module is a file, or comes from an image: a wasm OCI artifact or an image whose entrypoint is a `.wasm`
 * file, taken from the local store and pulled when missing (as `docker run` does), built into a wasm bundle under
 * `<root>/bundles/` that is removed once the module has ended.
 */
import { statSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import type { ResolvedImage, WasmOverrides } from "@magikrun/image";
import type { WasmExit } from "@magikrun/runtime-wasm";
import { isMagikError, MagikError, type WasiPreopen, type WasmBundle } from "@magikrun/spec";
import { type GlobalOptions, storeRoot } from "../cli.ts";
import { runWasmInstance } from "./oci-wasm.ts";

const USAGE = `usage: magikrun wasm run [options] MODULE.wasm|IMAGE [ARGS...]

  --fuel N                 instruction budget (default DEFAULT_WASM_FUEL = 1e9)
  --timeout MS             wall-clock limit
  --max-memory-pages N     linear memory cap, in 64 KiB pages (default and max MAX_WASM_MEMORY_PAGES)
  --dir HOST[:GUEST[:ro]]  preopen a host directory (repeatable; GUEST defaults to HOST)
  --env K=V                environment variable (repeatable)
  --json                   print the exit status as JSON on stdout once the module has ended
  --pull                   pull IMAGE even when the local store has it (default: only when missing)

Options go before MODULE; everything after it is passed to the module. The argument is a module file when it
is a file, ends in .wasm or starts with / or .; otherwise it is an image reference (a wasm OCI artifact, or an
image whose entrypoint is a .wasm file, whose rootfs is then preopened as /), and ARGS replace the image's Cmd.
Exit status: the module's exit code, 124 on timeout, 134 on a trap or exhausted fuel, 128+N when killed by
signal N.`;

export type WasmRunTarget =
  | { kind: "module"; bundle: WasmBundle }
  | { kind: "image"; reference: string; pull: boolean; overrides: WasmOverrides };

export interface WasmRunOptions {
  target: WasmRunTarget;
  json: boolean;
}

/** A module file rather than an image reference (references never start with / or .; an existing file wins). */
export function isModulePath(arg: string): boolean {
  return (
    arg.endsWith(".wasm") ||
    arg.startsWith("/") ||
    arg.startsWith(".") ||
    statSync(arg, { throwIfNoEntry: false })?.isFile() === true
  );
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
  let pull = false;
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
      case "--pull":
        pull = true;
        break;
      default:
        throw invalid(`unknown option ${flag}`, { option: flag });
    }
  }
  const module = args[i];
  if (module === undefined) throw invalid("missing MODULE.wasm or IMAGE", { expected: "MODULE.wasm|IMAGE" });
  const rest = args.slice(i + 1);
  if (!isModulePath(module)) {
    const overrides: WasmOverrides = { env, preopens, ...limits };
    if (rest.length > 0) overrides.cmd = rest;
    return { json, target: { kind: "image", reference: module, pull, overrides } };
  }
  if (pull) {
    throw invalid(`--pull is for images; ${JSON.stringify(module)} is a module file`, {
      option: "--pull",
      value: module,
    });
  }
  const modulePath = resolve(module);
  return {
    json,
    target: {
      kind: "module",
      bundle: {
        kind: "wasm",
        path: dirname(modulePath),
        modulePath,
        args: [basename(module), ...rest],
        env,
        preopens,
        ...limits,
      },
    },
  };
}

interface ImageBundle {
  bundle: WasmBundle;
  image: ResolvedImage;
  remove(): void;
}

/**
 * The image from the local store (pulled first with `--pull`, or when missing; an index's wasm entry is preferred),
 * built into a wasm bundle whose removal (bundle dir and any assembled rootfs) is the caller's.
 */
async function imageBundle(
  target: Extract<WasmRunTarget, { kind: "image" }>,
  id: string,
  globals: GlobalOptions,
): Promise<ImageBundle> {
  const { BundleBuilder, ImageStore, pullImage } = await import("@magikrun/image");
  const store = await ImageStore.open(storeRoot(globals));
  let image: ResolvedImage | undefined;
  if (!target.pull) {
    try {
      image = await store.resolve(target.reference);
    } catch (err) {
      if (!isMagikError(err, "ImageNotFound")) throw err;
    }
  }
  image ??= (await pullImage(target.reference, { store, wasmPlatform: "prefer" })).image;
  const builder = BundleBuilder.fromStore(store.blobs);
  const bundle = await builder.buildWasm(image, id, target.overrides);
  return { bundle, image, remove: () => builder.remove(id) };
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
  const id = `wasm-${process.pid}-${Date.now().toString(36)}`;
  let built: ImageBundle | undefined;
  try {
    const { target } = options;
    let bundle: WasmBundle;
    if (target.kind === "image") {
      built = await imageBundle(target, id, globals);
      bundle = built.bundle;
    } else bundle = target.bundle;
    const exit: WasmExit = await runWasmInstance(id, bundle, {
      ...(globals.root && { root: join(globals.root, "wasm") }),
    });
    if (options.json) {
      const image = built && {
        reference: built.image.reference,
        manifestDigest: built.image.manifestDigest,
      };
      console.log(JSON.stringify({ id, exit, ...(image && { image }) }));
    } else if (exit.reason !== "exited") {
      console.error(`magikrun: wasm: ${exit.reason}${exit.message ? `: ${exit.message}` : ""}`);
    }
    return exit.code;
  } finally {
    built?.remove();
  }
}
