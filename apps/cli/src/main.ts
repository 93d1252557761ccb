#!/usr/bin/env bun
/**
 * The `magikrun` command. Each command group lives in its own module under ./commands and is loaded only when
 * used, so `magikrun state` does not pay for the registry client or the wasm engine.
 */
import { isMagikError, MagikError } from "@magikrun/spec/errors";
import { type CommandModule, type GlobalOptions, parseGlobalOptions, printError } from "./cli.ts";

const ROUTES: Record<string, () => Promise<CommandModule>> = {
  image: () => import("./commands/image.ts"),
  bundle: () => import("./commands/bundle.ts"),
  wasm: () => import("./commands/wasm.ts"),
  // runc-compatible OCI commands, as containerd's runc shim and podman call them.
  create: () => import("./commands/oci.ts"),
  start: () => import("./commands/oci.ts"),
  run: () => import("./commands/oci.ts"),
  state: () => import("./commands/oci.ts"),
  kill: () => import("./commands/oci.ts"),
  delete: () => import("./commands/oci.ts"),
  exec: () => import("./commands/oci.ts"),
  list: () => import("./commands/oci.ts"),
  ps: () => import("./commands/oci.ts"),
  pause: () => import("./commands/oci.ts"),
  resume: () => import("./commands/oci.ts"),
  spec: () => import("./commands/oci.ts"),
  events: () => import("./commands/oci.ts"),
  features: () => import("./commands/oci.ts"),
  update: () => import("./commands/oci.ts"),
};

const USAGE = `usage: magikrun [global options] <command> [options]

OCI runtime (runc-compatible): create start run state kill delete exec list ps pause resume update
                                spec events features
Images:                         image pull|ls|inspect|tag|rm|prune|import|build-from-dir
Bundles from images:            bundle create|rm|path
WebAssembly:                    wasm run

Global options: --root DIR (runtime state)  --store DIR (images, layers, bundles)  --log FILE
                --log-format text|json  --debug  --systemd-cgroup  --json
Run 'magikrun <command> --help' for a command's options.`;

async function main(argv: string[]): Promise<number> {
  let globals: GlobalOptions;
  let rest: string[];
  try {
    ({ globals, rest } = parseGlobalOptions(argv));
  } catch (err) {
    printError(err, false);
    return 2;
  }
  const [command, ...args] = rest;
  if (command === undefined || command === "help" || command === "--help" || command === "-h") {
    console.log(USAGE);
    return command === undefined ? 2 : 0;
  }
  if (command === "--version" || command === "-v" || command === "version") {
    const pkg = (await import("../package.json", { with: { type: "json" } })).default;
    console.log(`magikrun version ${pkg.version}\nspec: 1.2.0`);
    return 0;
  }
  const route = ROUTES[command];
  if (!route) {
    printError(
      new MagikError("InvalidInput", `unknown command ${JSON.stringify(command)}`, {
        details: { command },
        hint: "Run 'magikrun --help' for the list of commands.",
      }),
      globals.json,
      globals,
    );
    return 2;
  }
  try {
    const mod = await route();
    return await mod.run(command, args, globals);
  } catch (err) {
    // containerd's shim reads the --log file to report why runc (here: magikrun) failed.
    printError(err, globals.json, globals);
    return isMagikError(err, "InvalidInput") ? 2 : 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
