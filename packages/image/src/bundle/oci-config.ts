import path from "node:path";
import {
  type ImageConfig,
  type ImageRuntimeConfig,
  MagikError,
  type Mount,
  OCI_RUNTIME_SPEC_VERSION,
  type Resources,
  RuntimeConfig,
} from "@magikrun/spec";
import {
  DEFAULT_PATH,
  defaultCapabilities,
  defaultLinux,
  defaultMounts,
  defaultRlimits,
} from "@magikrun/spec/runc-defaults";
import type { ResolvedUser } from "./user.ts";

/** Per-container choices layered over the image's config. */
export interface ContainerOverrides {
  /** The whole command line; replaces entrypoint and cmd. */
  args?: string[];
  /** Replaces the image's Entrypoint (and, as with `docker run --entrypoint`, drops its Cmd unless `cmd` is given). */
  entrypoint?: string[];
  /** Replaces the image's Cmd. */
  cmd?: string[];
  /** `KEY=value` strings or a map; merged over the image's Env by key. */
  env?: string[] | Record<string, string>;
  /** Working directory (absolute; relative ones are taken from `/`). */
  cwd?: string;
  /** `uid`, `uid:gid`, `name`, `name:group`; default the image's User, else root. */
  user?: string;
  hostname?: string;
  resources?: Resources;
  /** Mount the root filesystem read-only. Default false. */
  readonlyRootfs?: boolean;
  terminal?: boolean;
  annotations?: Record<string, string>;
}

export interface ProcessSpec {
  args: string[];
  env: string[];
  cwd: string;
}

function envEntries(env: string[] | Record<string, string> | undefined): string[] {
  if (!env) return [];
  return Array.isArray(env) ? env : Object.entries(env).map(([k, v]) => `${k}=${v}`);
}

/** Merges env lists by key, later lists winning, keeping first-seen order. */
export function mergeEnv(...lists: string[][]): string[] {
  const merged = new Map<string, string>();
  for (const list of lists) {
    for (const entry of list) {
      const eq = entry.indexOf("=");
      const key = eq < 0 ? entry : entry.slice(0, eq);
      if (key === "" || entry.includes("\0")) {
        throw new MagikError("InvalidInput", `malformed environment entry ${JSON.stringify(entry)}`, {
          details: { env: entry },
          hint: "Environment entries look like KEY=value.",
        });
      }
      merged.set(key, entry);
    }
  }
  return [...merged.values()];
}

/** Command, environment and working directory from the image config and overrides (shared by all bundle kinds). */
export function processSpec(image: ImageConfig, overrides: ContainerOverrides): ProcessSpec {
  const config: Partial<ImageRuntimeConfig> = image.config ?? {};
  const args = overrides.args ?? [
    ...(overrides.entrypoint ?? config.Entrypoint ?? []),
    ...(overrides.cmd ?? (overrides.entrypoint ? [] : (config.Cmd ?? []))),
  ];
  if (args.length === 0) {
    throw new MagikError(
      "InvalidInput",
      "no command: the image has no Entrypoint or Cmd and none was given",
      {
        details: { entrypoint: config.Entrypoint ?? null, cmd: config.Cmd ?? null },
        hint: "Pass the command to run.",
      },
    );
  }
  const imageEnv = config.Env ?? [];
  const base = imageEnv.some((e) => e.startsWith("PATH=")) ? [] : [DEFAULT_PATH];
  const env = mergeEnv(base, imageEnv, envEntries(overrides.env));
  const cwd = path.posix.resolve("/", overrides.cwd ?? (config.WorkingDir || "/"));
  return { args, env, cwd };
}

export interface OciConfigInput {
  image: ImageConfig;
  overrides: ContainerOverrides;
  user: ResolvedUser;
  rootfsPath: string;
  /** Default hostname (the container id). */
  id: string;
}

/** A runtime-spec config.json for one container, validated against the schema before it is returned. */
export function buildOciConfig(input: OciConfigInput): RuntimeConfig {
  const { image, overrides, user } = input;
  const proc = processSpec(image, overrides);
  const env = proc.env.some((e) => e.startsWith("HOME="))
    ? proc.env
    : [...proc.env, `HOME=${user.home ?? "/"}`];
  return assembleOciConfig({
    process: { ...proc, env },
    user,
    root: { path: input.rootfsPath, readonly: overrides.readonlyRootfs ?? false },
    hostname: overrides.hostname ?? input.id.slice(0, 63),
    terminal: overrides.terminal ?? false,
    ...(overrides.resources && { resources: overrides.resources }),
    annotations: { ...(image.config?.Labels ?? {}), ...(overrides.annotations ?? {}) },
  });
}

/** The parts of a config.json that differ between containers; the rest is runc's defaults. */
export interface OciConfigParts {
  process: ProcessSpec;
  user: Pick<ResolvedUser, "uid" | "gid" | "additionalGids">;
  root: { path: string; readonly: boolean };
  hostname: string;
  terminal: boolean;
  resources?: Resources;
  /** Appended after runc's default mounts. */
  mounts?: Mount[];
  annotations: Record<string, string>;
}

/** runc's defaults around the given parts (shared by native and wasm bundles), checked against the schema. */
export function assembleOciConfig(parts: OciConfigParts): RuntimeConfig {
  const linux = defaultLinux();
  if (parts.resources) linux.resources = { ...linux.resources, ...parts.resources };
  const processUser: { uid: number; gid: number; additionalGids?: number[] } = {
    uid: parts.user.uid,
    gid: parts.user.gid,
  };
  if (parts.user.additionalGids.length > 0) processUser.additionalGids = parts.user.additionalGids;
  const config = {
    ociVersion: OCI_RUNTIME_SPEC_VERSION,
    process: {
      terminal: parts.terminal,
      user: processUser,
      args: parts.process.args,
      env: parts.process.env,
      cwd: parts.process.cwd,
      capabilities: defaultCapabilities(),
      rlimits: defaultRlimits(),
      noNewPrivileges: true,
    },
    root: parts.root,
    hostname: parts.hostname,
    mounts: [...defaultMounts(), ...(parts.mounts ?? [])],
    linux,
    annotations: parts.annotations,
  };
  const parsed = RuntimeConfig.safeParse(config);
  if (!parsed.success) {
    throw new MagikError("InvalidInput", `the container settings do not make a valid config.json`, {
      details: { issues: parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`) },
    });
  }
  return parsed.data;
}
