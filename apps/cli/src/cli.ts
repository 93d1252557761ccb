import { appendFileSync } from "node:fs";
import { isMagikError } from "@magikrun/spec/errors";
// root.ts alone (node:os + node:path), not the package index: that one loads the blob store, node:crypto and
// @magikrun/spec's zod schemas, which the OCI commands never need. (@magikrun/storage has no subpath export;
// a lazy require instead breaks `bun build --compile` and vitest.)
import { defaultRoot } from "../../../packages/storage/src/root.ts";

/** Options every command accepts before its name, as runc does (`runc --root X create ...`). */
export interface GlobalOptions {
  /** Runtime state directory, as runc's --root (default per runtime, e.g. /run/magikrun). */
  root?: string;
  /** Image store: blobs, image index, layer cache, bundles (default $MAGIKRUN_ROOT or /var/lib/magikrun). */
  store?: string;
  log?: string;
  logFormat: "text" | "json";
  debug: boolean;
  systemdCgroup: boolean;
  json: boolean;
}

export interface CommandModule {
  /** Returns the process exit code. */
  run(command: string, args: string[], globals: GlobalOptions): Promise<number>;
}

export function parseGlobalOptions(argv: string[]): { globals: GlobalOptions; rest: string[] } {
  const globals: GlobalOptions = { logFormat: "text", debug: false, systemdCgroup: false, json: false };
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith("-") || arg === "-h" || arg === "--help" || arg === "-v" || arg === "--version")
      break;
    const [flag, inline] = arg.includes("=")
      ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)]
      : [arg];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case "--root":
        globals.root = value();
        break;
      case "--store":
        globals.store = value();
        break;
      case "--log":
        globals.log = value();
        break;
      case "--log-format": {
        const v = value();
        if (v !== "text" && v !== "json") throw new Error(`--log-format must be text or json, got ${v}`);
        globals.logFormat = v;
        break;
      }
      case "--debug":
        globals.debug = true;
        break;
      case "--systemd-cgroup":
        globals.systemdCgroup = true;
        break;
      case "--json":
        globals.json = true;
        break;
      case "--rootless":
      case "--criu":
        value(); // accepted for runc compatibility; rootless is detected, criu is not supported
        break;
      default:
        throw new Error(`unknown global option ${flag}`);
    }
  }
  return { globals, rest: argv.slice(i) };
}

function logFileLine(
  globals: GlobalOptions,
  level: string,
  message: string,
  extra: Record<string, string> = {},
): void {
  if (!globals.log) return;
  const line =
    globals.logFormat === "json"
      ? JSON.stringify({ level, msg: message, ...extra, time: new Date().toISOString() })
      : `level=${level} msg=${JSON.stringify(message)}${Object.entries(extra)
          .map(([k, v]) => ` ${k}=${v}`)
          .join("")}`;
  try {
    appendFileSync(globals.log, `${line}\n`);
  } catch {
    // the log is best effort
  }
}

/**
 * Runtime messages. Warnings (settings accepted but not enforced) go to stderr and the --log file. Debug
 * messages (expected conditions, such as ambient capabilities not raised) only with --debug, and then, as runc
 * does, to the --log file when one is given, else to stderr.
 */
export function logMessage(globals: GlobalOptions, level: "warning" | "debug", message: string): void {
  if (level === "debug") {
    if (!globals.debug) return;
    if (globals.log) logFileLine(globals, "debug", message);
    else console.error(`magikrun: debug: ${message}`);
    return;
  }
  console.error(`magikrun: warning: ${message}`);
  logFileLine(globals, "warning", message);
}

/** Errors go to stderr (text or JSON) and, like runc, also to the --log file when one is given. */
export function printError(err: unknown, json: boolean, globals?: GlobalOptions): void {
  const body = isMagikError(err)
    ? err.toJSON()
    : { code: "Internal", message: err instanceof Error ? err.message : String(err), details: {}, hint: "" };
  if (json) {
    console.error(JSON.stringify({ error: body }));
  } else {
    console.error(`magikrun: ${body.code}: ${body.message}${body.hint ? `\n  hint: ${body.hint}` : ""}`);
  }
  if (globals) logFileLine(globals, "error", body.message, { code: body.code });
}

/** Prints a result: JSON when asked, otherwise the text rendering. */
export function output(globals: Pick<GlobalOptions, "json">, value: unknown, text: () => string): void {
  console.log(globals.json ? JSON.stringify(value, null, 2) : text());
}

/** The image store's root: --store, else MAGIKRUN_ROOT, else the default for this user. */
export function storeRoot(globals: Pick<GlobalOptions, "store">): string {
  return globals.store ?? defaultRoot();
}
