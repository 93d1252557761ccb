/**
 * `magikrun update`, runc 1.1.5's flags: containerd's runc shim calls `update --resources - <id>` with an OCI
 * LinuxResources document on stdin (Kubernetes UpdateContainerResources); people use the individual flags.
 */
import { readFileSync } from "node:fs";
import type { NativeRuntime } from "@magikrun/runtime-native/native-runtime";
import { MagikError } from "@magikrun/spec/errors";
import type { Resources } from "@magikrun/spec/runtime-config";
import { parseSize } from "../sizes.ts";

const flag = (name: string) => ({ name, value: true });

/** The flag table of `update` (oci.ts's parser reads it); every flag takes a value. */
export const UPDATE_FLAGS = {
  "--resources": flag("resources"),
  "-r": flag("resources"),
  "--blkio-weight": flag("blkio-weight"),
  "--cpu-period": flag("cpu-period"),
  "--cpu-quota": flag("cpu-quota"),
  "--cpu-share": flag("cpu-share"),
  "--cpu-rt-period": flag("cpu-rt-period"),
  "--cpu-rt-runtime": flag("cpu-rt-runtime"),
  "--cpuset-cpus": flag("cpuset-cpus"),
  "--cpuset-mems": flag("cpuset-mems"),
  "--memory": flag("memory"),
  "--memory-reservation": flag("memory-reservation"),
  "--memory-swap": flag("memory-swap"),
  "--pids-limit": flag("pids-limit"),
  "--kernel-memory": flag("kernel-memory"),
  "--kernel-memory-tcp": flag("kernel-memory-tcp"),
  "--l3-cache-schema": flag("l3-cache-schema"),
  "--mem-bw-schema": flag("mem-bw-schema"),
};

export interface UpdateInput {
  flags: ReadonlyMap<string, readonly string[]>;
  /** Reads the --resources file; "-" is stdin. */
  readResources: (path: string) => string;
  warn: (message: string) => void;
}

function badValue(name: string, value: string, what: string): MagikError {
  return new MagikError("InvalidInput", `--${name} must be ${what}, got ${JSON.stringify(value)}`, {
    details: { flag: `--${name}`, value },
    hint: "Run 'magikrun update --help'.",
  });
}

/** runc reads these with strconv.ParseInt/ParseUint: decimal integers only. */
function integer(name: string, value: string, unsigned: boolean): number {
  const n = /^[-+]?\d+$/.test(value.trim()) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n) || (unsigned && n < 0)) {
    throw badValue(name, value, unsigned ? "a non-negative integer" : "an integer");
  }
  return n;
}

/** runc: "-1" is unlimited, anything else a size with suffixes; 0 leaves the limit alone. */
function memory(name: string, value: string): number {
  if (value.trim() === "-1") return -1;
  return parseSize(value, `--${name}`, { allowZero: true, allowFraction: true });
}

/**
 * The resources an update asks for: the --resources document (validated as OCI LinuxResources), with the
 * individual flags over the same fields. runc 1.1.5 ignores the individual flags when --resources is given;
 * here they refine it instead, so a flag is never silently dropped.
 */
export async function updateResources(input: UpdateInput): Promise<Resources> {
  const one = (name: string) => input.flags.get(name)?.[0];
  for (const name of ["l3-cache-schema", "mem-bw-schema"]) {
    if (one(name) !== undefined) {
      throw new MagikError("NotSupported", `--${name}: Intel RDT is not supported`, {
        details: { flag: `--${name}`, value: one(name) },
        hint: "magikrun does not manage resctrl (Intel RDT) groups; leave the flag out.",
      });
    }
  }
  let r: Resources = {};
  const file = one("resources");
  if (file !== undefined) {
    const { parseJsonWith, preferOneShotParsing } = await import("@magikrun/spec/parse");
    preferOneShotParsing(); // before the schema is built (see oci.ts createOrRun)
    const { Resources: schema } = await import("@magikrun/spec/runtime-config");
    const what = file === "-" ? "resources from stdin" : `resources file ${file}`;
    let text: string;
    try {
      text = input.readResources(file);
    } catch (err) {
      throw new MagikError("InvalidInput", `cannot read ${what}: ${(err as Error).message}`, {
        cause: err,
        details: { path: file },
      });
    }
    r = parseJsonWith(schema, text, what, "InvalidInput");
  }
  const memoryGroup = () => {
    r.memory ??= {};
    return r.memory;
  };
  const cpuGroup = () => {
    r.cpu ??= {};
    return r.cpu;
  };
  const set = (name: string, apply: (value: string) => void) => {
    const value = one(name);
    if (value !== undefined) apply(value);
  };
  set("blkio-weight", (v) => {
    const weight = integer("blkio-weight", v, true);
    // runc: 0 leaves the weight alone; the kernel's range is 10-1000.
    if (weight !== 0 && (weight < 10 || weight > 1000))
      throw badValue("blkio-weight", v, "between 10 and 1000");
    if (weight !== 0) r.blockIO = { ...r.blockIO, weight };
  });
  set("cpu-period", (v) => {
    cpuGroup().period = integer("cpu-period", v, true);
  });
  set("cpu-quota", (v) => {
    cpuGroup().quota = integer("cpu-quota", v, false);
  });
  set("cpu-share", (v) => {
    cpuGroup().shares = integer("cpu-share", v, true);
  });
  set("cpu-rt-period", (v) => {
    cpuGroup().realtimePeriod = integer("cpu-rt-period", v, true);
  });
  set("cpu-rt-runtime", (v) => {
    cpuGroup().realtimeRuntime = integer("cpu-rt-runtime", v, false);
  });
  set("cpuset-cpus", (v) => {
    if (v !== "") cpuGroup().cpus = v;
  });
  set("cpuset-mems", (v) => {
    if (v !== "") cpuGroup().mems = v;
  });
  set("memory", (v) => {
    memoryGroup().limit = memory("memory", v);
  });
  set("memory-swap", (v) => {
    memoryGroup().swap = memory("memory-swap", v);
  });
  set("memory-reservation", (v) => {
    memoryGroup().reservation = memory("memory-reservation", v);
  });
  set("pids-limit", (v) => {
    r.pids = { limit: integer("pids-limit", v, false) };
  });
  for (const name of ["kernel-memory", "kernel-memory-tcp"]) {
    // Checked for a valid size as runc does, then dropped: kernels since 5.16 have no kernel memory limits.
    set(name, (v) => {
      memory(name, v);
      input.warn(`--${name} is ignored: kernel memory limits are deprecated and unsupported`);
    });
  }
  return r;
}

export async function update(
  runtime: NativeRuntime,
  id: string,
  flags: ReadonlyMap<string, readonly string[]>,
  warn: (message: string) => void,
): Promise<number> {
  const resources = await updateResources({
    flags,
    readResources: (path) => readFileSync(path === "-" ? 0 : path, "utf8"),
    warn,
  });
  await runtime.update(id, resources);
  return 0;
}
