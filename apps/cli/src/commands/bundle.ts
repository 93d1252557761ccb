/**
 * `magikrun bundle create|rm|path`: turns a local image into a bundle a runtime can run, the step between
 * `image pull` and the runc-style `create`/`run` (which take a bundle directory, as runc does).
 */
import { parseArgs } from "node:util";
import {
  BundleBuilder,
  type ContainerOverrides,
  ImageStore,
  isCompatVariant,
  isWasmArtifact,
  type ResolvedImage,
} from "@magikrun/image";
import { type Bundle, MagikError, MediaTypes, type Resources } from "@magikrun/spec";
import { type GlobalOptions, output, storeRoot } from "../cli.ts";
import { parseSize } from "../sizes.ts";

// The one size parser of the CLI (also `update --memory`); tests and callers have long imported it from here.
export { parseSize };

const USAGE = `usage: magikrun bundle <command> [options]

  create IMAGE ID [--kind oci|wasm|microvm] [--entrypoint ARG]... [--cmd ARG]... [--env K=V]... [--cwd DIR]
                  [--user U] [--hostname H] [--read-only] [--memory SIZE] [--pids-limit N] [--cpus N]
                  [--fuel N] [--max-memory-pages N] [--timeout MS] [-- ARGS...]
      builds <store>/bundles/ID from IMAGE (rootfs by overlayfs over cached layers, config.json from the
      image config) and prints its path; run it with 'magikrun run --bundle PATH ID'. --kind defaults to
      wasm for wasm artifacts and images annotated module.wasm.image/variant=compat, else oci; a wasm
      bundle's limits (--fuel, --max-memory-pages, --timeout) are annotations of its config.json
  rm ID     removes the bundle and its root filesystem
  path ID   prints the bundle directory of ID`;

function usageError(message: string): MagikError {
  return new MagikError("InvalidInput", message, { hint: USAGE });
}

/**
 * An image that declares itself wasm: a wasm artifact (its layer is the module, no rootfs to run natively) or one
 * annotated compat by a wasm image builder. A plain image with a .wasm entrypoint stays oci unless asked.
 */
function isWasmImage(image: ResolvedImage): boolean {
  return (
    isCompatVariant(image) ||
    isWasmArtifact(image.manifest) ||
    image.manifest.layers.some((l) => l.mediaType === MediaTypes.wasmLayer)
  );
}

async function open(globals: GlobalOptions): Promise<BundleBuilder> {
  const store = await ImageStore.open(storeRoot(globals));
  return BundleBuilder.fromStore(store.blobs);
}

function positiveInt(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) {
    throw new MagikError("InvalidInput", `${flag} must be a positive integer, got ${value}`, {
      details: { flag, value },
    });
  }
  return n;
}

function resourcesFrom(
  memory: string | undefined,
  pids: string | undefined,
  cpus: string | undefined,
): Resources | undefined {
  const resources: Resources = {};
  if (memory !== undefined) resources.memory = { limit: parseSize(memory, "--memory") };
  const pidsLimit = positiveInt(pids, "--pids-limit");
  if (pidsLimit !== undefined) resources.pids = { limit: pidsLimit };
  if (cpus !== undefined) {
    const n = Number(cpus);
    if (!Number.isFinite(n) || n <= 0) {
      throw new MagikError("InvalidInput", `--cpus must be a positive number, got ${cpus}`, {
        details: { flag: "--cpus", value: cpus },
      });
    }
    // As docker: a quota of n periods of 100 ms.
    resources.cpu = { period: 100_000, quota: Math.round(n * 100_000) };
  }
  return Object.keys(resources).length > 0 ? resources : undefined;
}

async function create(args: string[], globals: GlobalOptions): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      kind: { type: "string" },
      entrypoint: { type: "string", multiple: true },
      cmd: { type: "string", multiple: true },
      env: { type: "string", multiple: true, short: "e" },
      cwd: { type: "string" },
      user: { type: "string", short: "u" },
      hostname: { type: "string" },
      "read-only": { type: "boolean" },
      memory: { type: "string", short: "m" },
      "pids-limit": { type: "string" },
      cpus: { type: "string" },
      fuel: { type: "string" },
      "max-memory-pages": { type: "string" },
      timeout: { type: "string" },
    },
  });
  const [image, id, ...rest] = positionals;
  if (!image || !id) throw usageError("bundle create needs IMAGE and ID");
  const overrides: ContainerOverrides = {};
  if (rest.length > 0) overrides.args = rest;
  if (values.entrypoint) overrides.entrypoint = values.entrypoint;
  if (values.cmd) overrides.cmd = values.cmd;
  if (values.env) overrides.env = values.env;
  if (values.cwd) overrides.cwd = values.cwd;
  if (values.user) overrides.user = values.user;
  if (values.hostname) overrides.hostname = values.hostname;
  if (values["read-only"]) overrides.readonlyRootfs = true;
  const resources = resourcesFrom(values.memory, values["pids-limit"], values.cpus);
  if (resources) overrides.resources = resources;

  const store = await ImageStore.open(storeRoot(globals));
  const resolved = await store.resolve(image);
  const builder = BundleBuilder.fromStore(store.blobs);
  const kind = values.kind ?? (isWasmImage(resolved) ? "wasm" : "oci");
  const wasmFlags = (["fuel", "max-memory-pages", "timeout"] as const).filter((f) => values[f] !== undefined);
  if (kind !== "wasm" && wasmFlags.length > 0) {
    throw new MagikError("InvalidInput", `--${wasmFlags[0]} is for wasm bundles, not ${kind}`, {
      details: { flag: `--${wasmFlags[0]}`, kind, image },
      hint: "Wasm limits apply to --kind wasm (the default for wasm artifacts and compat images).",
    });
  }
  let bundle: Bundle;
  switch (kind) {
    case "oci":
      bundle = await builder.buildOci(resolved, id, overrides);
      break;
    case "wasm": {
      const fuel = positiveInt(values.fuel, "--fuel");
      const pages = positiveInt(values["max-memory-pages"], "--max-memory-pages");
      const timeoutMs = positiveInt(values.timeout, "--timeout");
      const { hostname: _h, user: _u, readonlyRootfs: _r, ...wasm } = overrides;
      bundle = await builder.buildWasm(resolved, id, {
        ...wasm,
        ...(fuel !== undefined && { fuel }),
        ...(pages !== undefined && { maxMemoryPages: pages }),
        ...(timeoutMs !== undefined && { timeoutMs }),
      });
      break;
    }
    case "microvm": {
      const { hostname: _h, user: _u, readonlyRootfs: _r, ...vm } = overrides;
      bundle = await builder.buildMicroVm(resolved, id, vm);
      break;
    }
    default:
      throw new MagikError("InvalidInput", `unknown bundle kind ${JSON.stringify(kind)}`, {
        details: { kind },
        hint: "--kind is oci, wasm or microvm.",
      });
  }
  output(
    globals,
    { id, kind: bundle.kind, path: bundle.path, image: resolved.reference ?? image },
    () => bundle.path,
  );
  return 0;
}

export async function run(_command: string, args: string[], globals: GlobalOptions): Promise<number> {
  const [sub, ...rest] = args;
  switch (sub) {
    case "create":
      return create(rest, globals);
    case "rm": {
      const ids = rest.filter((a) => !a.startsWith("-"));
      if (ids.length === 0) throw usageError("bundle rm needs at least one ID");
      const builder = await open(globals);
      for (const id of ids) builder.remove(id);
      output(globals, { removed: ids }, () => ids.join("\n"));
      return 0;
    }
    case "path": {
      const id = rest[0];
      if (!id) throw usageError("bundle path needs an ID");
      const dir = (await open(globals)).bundleDir(id);
      output(globals, { id, path: dir }, () => dir);
      return 0;
    }
    case undefined:
    case "help":
    case "--help":
    case "-h":
      console.log(USAGE);
      return sub === undefined ? 2 : 0;
    default:
      throw usageError(`unknown bundle command ${JSON.stringify(sub)}`);
  }
}
