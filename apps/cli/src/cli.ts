import { appendFileSync } from "node:fs";
import { isMagikError } from "@magikrun/spec";
import { defaultRoot } from "@magikrun/storage";

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
  if (globals?.log) {
    const line =
      globals.logFormat === "json"
        ? JSON.stringify({
            level: "error",
            msg: body.message,
            code: body.code,
            time: new Date().toISOString(),
          })
        : `level=error msg=${JSON.stringify(body.message)} code=${body.code}`;
    try {
      appendFileSync(globals.log, `${line}\n`);
    } catch {
      // the log is best effort: the error has already been printed
    }
  }
}

/** Prints a result: JSON when asked, otherwise the text rendering. */
export function output(globals: Pick<GlobalOptions, "json">, value: unknown, text: () => string): void {
  console.log(globals.json ? JSON.stringify(value, null, 2) : text());
}

/** The image store's root: --store, else MAGIKRUN_ROOT, else the default for this user. */
export function storeRoot(globals: Pick<GlobalOptions, "store">): string {
  return globals.store ?? defaultRoot();
}
