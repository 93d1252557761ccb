/**
 * runc-compatible OCI commands over @magikrun/runtime-native, with runc's flags, so that containerd's runc shim
 * (BinaryName) and podman (--runtime) can drive magikrun. Output formats follow runc's.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { posix } from "node:path";
// Only what every command needs is imported here: config.json validation (zod), the console proxy and the
// default spec are loaded by the commands that use them, so `start`, `state`, `kill` and `delete` start fast.
import { NativeRuntime } from "@magikrun/runtime-native/native-runtime";
import { parseSignal } from "@magikrun/runtime-native/signals";
import { MagikError } from "@magikrun/spec/errors";
import { OCI_RUNTIME_SPEC_VERSION } from "@magikrun/spec/runtime";
import type { Process } from "@magikrun/spec/runtime-config";
import type { ContainerState } from "@magikrun/spec/state";
import { type GlobalOptions, logMessage } from "../cli.ts";
import { UPDATE_FLAGS, update } from "./oci-update.ts";

interface FlagSpec {
  /** Canonical name the value is stored under. */
  name: string;
  value: boolean;
  repeat?: boolean;
}

type Parsed = { flags: Map<string, string[]>; positional: string[] };

const COMMON: Record<string, FlagSpec> = {
  "--help": { name: "help", value: false },
  "-h": { name: "help", value: false },
};

const FLAGS: Record<string, Record<string, FlagSpec>> = {
  create: {
    "--bundle": { name: "bundle", value: true },
    "-b": { name: "bundle", value: true },
    "--console-socket": { name: "console-socket", value: true },
    "--pid-file": { name: "pid-file", value: true },
    "--no-pivot": { name: "no-pivot", value: false },
    "--no-new-keyring": { name: "no-new-keyring", value: false },
    "--preserve-fds": { name: "preserve-fds", value: true },
    "--runtime": { name: "runtime", value: true },
  },
  start: {},
  state: {},
  kill: { "--all": { name: "all", value: false }, "-a": { name: "all", value: false } },
  delete: { "--force": { name: "force", value: false }, "-f": { name: "force", value: false } },
  exec: {
    "--process": { name: "process", value: true },
    "-p": { name: "process", value: true },
    "--tty": { name: "tty", value: false },
    "-t": { name: "tty", value: false },
    "--detach": { name: "detach", value: false },
    "-d": { name: "detach", value: false },
    "--pid-file": { name: "pid-file", value: true },
    "--console-socket": { name: "console-socket", value: true },
    "--cwd": { name: "cwd", value: true },
    "--env": { name: "env", value: true, repeat: true },
    "-e": { name: "env", value: true, repeat: true },
    "--user": { name: "user", value: true },
    "-u": { name: "user", value: true },
    "--additional-gids": { name: "additional-gids", value: true, repeat: true },
    "-g": { name: "additional-gids", value: true, repeat: true },
    "--no-new-privs": { name: "no-new-privs", value: false },
    "--preserve-fds": { name: "preserve-fds", value: true },
  },
  list: {
    "--format": { name: "format", value: true },
    "-f": { name: "format", value: true },
    "--quiet": { name: "quiet", value: false },
    "-q": { name: "quiet", value: false },
  },
  ps: { "--format": { name: "format", value: true }, "-f": { name: "format", value: true } },
  pause: {},
  resume: {},
  spec: {
    "--bundle": { name: "bundle", value: true },
    "-b": { name: "bundle", value: true },
    "--rootless": { name: "rootless", value: false },
  },
  events: {
    "--stats": { name: "stats", value: false },
    "--interval": { name: "interval", value: true },
  },
  features: {},
  update: UPDATE_FLAGS,
};
FLAGS.run = {
  ...FLAGS.create,
  "--detach": { name: "detach", value: false },
  "-d": { name: "detach", value: false },
};

function usageError(message: string, details: Record<string, unknown>): MagikError {
  return new MagikError("InvalidInput", message, { details, hint: "Run 'magikrun <command> --help'." });
}

/** Flags before and between positionals; for exec everything after the container id is the command. */
export function parseArgs(command: string, args: string[]): Parsed {
  const table = { ...COMMON, ...(FLAGS[command] ?? {}) };
  const flags = new Map<string, string[]>();
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--") {
      positional.push(...args.slice(i + 1));
      break;
    }
    if (command === "exec" && positional.length >= 1) {
      positional.push(...args.slice(i));
      break;
    }
    if (!arg.startsWith("-") || arg === "-") {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const spec = table[flag];
    if (!spec) throw usageError(`unknown option ${flag} for ${command}`, { command, option: flag });
    let value = "true";
    if (spec.value) {
      const v = eq > 0 ? arg.slice(eq + 1) : args[++i];
      if (v === undefined) throw usageError(`${flag} needs a value`, { command, option: flag });
      value = v;
    }
    flags.set(spec.name, spec.repeat ? [...(flags.get(spec.name) ?? []), value] : [value]);
  }
  return { flags, positional };
}

const one = (p: Parsed, name: string): string | undefined => p.flags.get(name)?.[0];
const has = (p: Parsed, name: string): boolean => p.flags.has(name);

function containerId(p: Parsed, command: string): string {
  const id = p.positional[0];
  if (!id) throw usageError(`${command} needs a container id`, { command });
  return id;
}

function printState(state: ContainerState, rootfs?: string): void {
  console.log(JSON.stringify({ ...state, ...(rootfs ? { rootfs } : {}) }, null, 2));
}

export async function run(command: string, args: string[], globals: GlobalOptions): Promise<number> {
  const p = parseArgs(command, args);
  if (has(p, "help")) {
    const flags = Object.keys(FLAGS[command] ?? {}).filter((f) => f.startsWith("--"));
    console.log(
      `usage: magikrun ${command} [options] ${command === "list" || command === "spec" || command === "features" ? "" : "<container-id>"}\noptions: ${flags.join(" ")}`,
    );
    return 0;
  }
  const runtime = new NativeRuntime({
    ...(globals.root ? { root: globals.root } : {}),
    onWarning: (m) => logMessage(globals, "warning", m),
    onDebug: (m) => logMessage(globals, "debug", m),
  });
  switch (command) {
    case "create":
    case "run":
      return createOrRun(runtime, command, p);
    case "start":
      await runtime.start(containerId(p, command));
      return 0;
    case "state": {
      const id = containerId(p, command);
      const state = await runtime.state(id);
      const stored = runtime.store.read(id);
      printState({ ...state, created: stored.created } as ContainerState, stored.rootfs);
      return 0;
    }
    case "kill": {
      const id = containerId(p, command);
      await runtime.kill(id, parseSignal(p.positional[1] ?? "SIGTERM"), { all: has(p, "all") });
      return 0;
    }
    case "delete":
      await runtime.delete(containerId(p, command), { force: has(p, "force") });
      return 0;
    case "pause":
      await runtime.pause(containerId(p, command));
      return 0;
    case "resume":
      await runtime.resume(containerId(p, command));
      return 0;
    case "list":
      return list(runtime, p);
    case "ps": {
      const pids = await runtime.pids(containerId(p, command));
      const format = one(p, "format") ?? "table";
      console.log(format === "json" ? JSON.stringify(pids) : ["PID", ...pids.map(String)].join("\n"));
      return 0;
    }
    case "exec":
      return exec(runtime, p);
    case "spec": {
      const dir = posix.resolve(one(p, "bundle") ?? ".");
      const path = `${dir}/config.json`;
      if (existsSync(path)) {
        throw new MagikError("InvalidInput", `${path} already exists`, {
          details: { path },
          hint: "Remove it first, or choose another --bundle directory.",
        });
      }
      const { defaultSpec } = await import("@magikrun/runtime-native/default-spec");
      writeFileSync(path, `${JSON.stringify(defaultSpec(), null, 2)}\n`);
      return 0;
    }
    case "events": {
      const id = containerId(p, command);
      if (!has(p, "stats")) {
        throw new MagikError("NotSupported", "events without --stats is not supported", {
          details: { command: "events" },
          hint: "Use `magikrun events --stats <id>` for one stats sample.",
        });
      }
      const stats = await runtime.stats(id);
      console.log(JSON.stringify({ type: "stats", id, data: stats }));
      return 0;
    }
    case "features":
      console.log(JSON.stringify(features(), null, 2));
      return 0;
    case "update":
      return update(runtime, containerId(p, command), p.flags, (m) => logMessage(globals, "warning", m));
  }
  throw usageError(`unknown command ${command}`, { command });
}

async function createOrRun(runtime: NativeRuntime, command: string, p: Parsed): Promise<number> {
  const id = containerId(p, command);
  const preserve = Number(one(p, "preserve-fds") ?? 0);
  if (preserve > 0) {
    throw new MagikError("NotSupported", "--preserve-fds is not supported", {
      details: { preserveFds: preserve },
      hint: "Pass data through the bundle or stdio instead.",
    });
  }
  // Before the schemas are built: zod decides per schema, at construction, whether to compile a parser.
  (await import("@magikrun/spec/parse")).preferOneShotParsing();
  const { loadBundle } = await import("@magikrun/runtime-native/bundle");
  const bundle = loadBundle(one(p, "bundle") ?? ".");
  const { runtimeChoice, runWasmForeground, selectWasm } = await import("./oci-wasm.ts");
  const wasm = await selectWasm(bundle, runtimeChoice(one(p, "runtime")));
  if (wasm) return runWasmForeground(id, wasm, command);
  const consoleSocket = one(p, "console-socket");
  const pidFile = one(p, "pid-file");
  // `run` in the foreground with a terminal and no console socket: relay the pty here, as runc does.
  const proxy =
    command === "run" && !has(p, "detach") && !consoleSocket && bundle.config.process?.terminal
      ? new (await import("@magikrun/runtime-native/console-proxy")).ConsoleProxy()
      : undefined;
  try {
    const socket = proxy?.socketPath ?? (consoleSocket ? posix.resolve(consoleSocket) : undefined);
    await runtime.create({
      id,
      bundle,
      noPivot: has(p, "no-pivot"),
      ...(socket ? { consoleSocket: socket } : {}),
      ...(pidFile ? { pidFile: posix.resolve(pidFile) } : {}),
    });
    if (command === "create") return 0;
    proxy?.receive();
    await runtime.start(id);
    if (has(p, "detach")) return 0;
    const attached = proxy?.attach();
    // Foreground run: forward the usual signals, then report the container's exit code and remove it (as runc).
    const forward = (signal: NodeJS.Signals) => () => void runtime.kill(id, signal).catch(() => {});
    const handlers = (["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT"] as const).map(
      (s) => [s, forward(s)] as const,
    );
    for (const [s, h] of handlers) process.on(s, h);
    try {
      const status = await runtime.wait(id);
      await attached;
      return status.code;
    } finally {
      for (const [s, h] of handlers) process.off(s, h);
      await runtime.delete(id, { force: true });
    }
  } finally {
    proxy?.close();
  }
}

async function list(runtime: NativeRuntime, p: Parsed): Promise<number> {
  const states = await runtime.list();
  if (has(p, "quiet")) {
    for (const s of states) console.log(s.id);
    return 0;
  }
  const rows = states.map((s) => {
    const stored = runtime.store.read(s.id);
    return { ...s, pid: s.pid ?? 0, rootfs: stored.rootfs, created: stored.created, owner: "root" };
  });
  if ((one(p, "format") ?? "table") === "json") {
    console.log(JSON.stringify(rows));
    return 0;
  }
  console.log("ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER");
  for (const r of rows) console.log(`${r.id}\t${r.pid}\t${r.status}\t${r.bundle}\t${r.created}\t${r.owner}`);
  return 0;
}

async function exec(runtime: NativeRuntime, p: Parsed): Promise<number> {
  const id = containerId(p, "exec");
  const processFile = one(p, "process");
  let proc: Partial<Process> & { args: string[] };
  if (processFile) {
    const { parseJsonWith, preferOneShotParsing } = await import("@magikrun/spec/parse");
    preferOneShotParsing(); // before the schemas are built (see createOrRun)
    const schemas = await import("@magikrun/spec/runtime-config");
    const parsed = parseJsonWith(
      schemas.Process,
      readFileSync(processFile, "utf8"),
      `process file ${processFile}`,
    );
    if (!parsed.args?.length) throw usageError("the process file has no args", { process: processFile });
    proc = { ...parsed, args: parsed.args };
  } else {
    const args = p.positional.slice(1);
    if (args.length === 0) throw usageError("exec needs a command (or --process FILE)", { id });
    proc = { args };
  }
  const cwd = one(p, "cwd");
  if (cwd) proc.cwd = cwd;
  const env = p.flags.get("env");
  if (env) {
    const base = runtime.store.read(id).config.process?.env ?? [];
    proc.env = [...(proc.env ?? base), ...env];
  }
  const user = one(p, "user");
  if (user) {
    const [uid, gid] = user.split(":").map(Number);
    if (!Number.isInteger(uid) || (gid !== undefined && !Number.isInteger(gid))) {
      throw usageError(`--user must be uid[:gid], got ${user}`, { user });
    }
    proc.user = { uid: uid!, gid: gid ?? 0 };
  }
  const gids = p.flags.get("additional-gids");
  if (gids && proc.user) proc.user.additionalGids = gids.map(Number);
  if (has(p, "no-new-privs")) proc.noNewPrivileges = true;
  if (has(p, "tty")) proc.terminal = true;
  const consoleSocket = one(p, "console-socket");
  const pidFile = one(p, "pid-file");
  const result = await runtime.exec(id, {
    process: proc,
    detach: has(p, "detach"),
    ...(consoleSocket ? { consoleSocket: posix.resolve(consoleSocket) } : {}),
    ...(pidFile ? { pidFile: posix.resolve(pidFile) } : {}),
  });
  if (!result.exit) return 0;
  return (await result.exit).code;
}

function features(): unknown {
  return {
    ociVersionMin: "1.0.0",
    ociVersionMax: OCI_RUNTIME_SPEC_VERSION,
    hooks: ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
    mountOptions: [
      "ro",
      "rw",
      "nosuid",
      "suid",
      "nodev",
      "dev",
      "noexec",
      "exec",
      "sync",
      "async",
      "dirsync",
      "remount",
      "mand",
      "nomand",
      "atime",
      "noatime",
      "diratime",
      "nodiratime",
      "relatime",
      "norelatime",
      "strictatime",
      "nostrictatime",
      "lazytime",
      "nolazytime",
      "nosymfollow",
      "symfollow",
      "bind",
      "rbind",
      "private",
      "rprivate",
      "shared",
      "rshared",
      "slave",
      "rslave",
      "unbindable",
      "runbindable",
    ],
    linux: {
      namespaces: ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
      cgroup: { v1: true, v2: true, systemd: false, systemdUser: false },
      seccomp: { enabled: true },
      apparmor: { enabled: false },
      selinux: { enabled: false },
    },
    annotations: { "org.magikrun.runtime": "native" },
  };
}
