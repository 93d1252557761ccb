import { z } from "zod/mini";
import "./zod-english.ts";

/**
 * OCI runtime-spec `config.json`, versions 1.0.2 through 1.2. Objects are loose: the spec says unknown
 * properties MUST be ignored, and runtimes that reject them break bundles made by newer tools.
 *
 * Written with `zod/mini` (functional API, tree-shakable): a CLI process that validates one config.json loads
 * only the pieces used here, not all of classic zod. Same zod core, so the same checks and messages.
 */

// z.int() is classic zod's z.number().int(): a safe integer (|n| <= 2^53-1), refusing NaN and the infinities.
const u32 = z.int().check(z.minimum(0), z.maximum(0xffff_ffff));
// JSON numbers past 2^53 (RLIM_INFINITY is 2^64-1) arrive rounded; they are still integers, so no safe-int check.
const i64 = z.number().check(z.refine(Number.isInteger, "must be an integer"));
const u64 = z.number().check(z.minimum(0), z.refine(Number.isInteger, "must be a non-negative integer"));
const StringMap = z.record(z.string(), z.string());

export const OciVersion = z
  .string()
  .check(z.regex(/^1\.[0-9]+\.[0-9]+(-[0-9A-Za-z.+-]+)?$/, "ociVersion must be 1.x.y"));

export const User = z.looseObject({
  uid: u32,
  gid: u32,
  umask: z.optional(u32),
  additionalGids: z.optional(z.array(u32)),
  username: z.optional(z.string()),
});

export const CAPABILITY_NAME = /^CAP_[A-Z_]+$/;
const CapList = z.array(z.string().check(z.regex(CAPABILITY_NAME, "capability names look like CAP_XXX")));
export const Capabilities = z.looseObject({
  bounding: z.optional(CapList),
  effective: z.optional(CapList),
  inheritable: z.optional(CapList),
  permitted: z.optional(CapList),
  ambient: z.optional(CapList),
});
export type Capabilities = z.infer<typeof Capabilities>;

export const Rlimit = z.looseObject({
  type: z.string().check(z.regex(/^RLIMIT_[A-Z]+$/)),
  soft: u64,
  hard: u64,
});
export type Rlimit = z.infer<typeof Rlimit>;

export const ConsoleSize = z.looseObject({ height: u32, width: u32 });

export const Process = z.looseObject({
  terminal: z.optional(z.boolean()),
  consoleSize: z.optional(ConsoleSize),
  user: User,
  args: z.optional(z.array(z.string()).check(z.minLength(1, "process.args needs at least the program"))),
  commandLine: z.optional(z.string()),
  env: z.optional(z.array(z.string())),
  cwd: z.string().check(z.startsWith("/", "process.cwd must be absolute")),
  capabilities: z.optional(Capabilities),
  rlimits: z.optional(z.array(Rlimit)),
  noNewPrivileges: z.optional(z.boolean()),
  apparmorProfile: z.optional(z.string()),
  oomScoreAdj: z.optional(z.int().check(z.minimum(-1000), z.maximum(1000))),
  selinuxLabel: z.optional(z.string()),
  ioPriority: z.optional(z.looseObject({ class: z.string(), priority: z.int() })),
  scheduler: z.optional(z.looseObject({ policy: z.string() })),
  execCPUAffinity: z.optional(
    z.looseObject({ initial: z.optional(z.string()), final: z.optional(z.string()) }),
  ),
});
export type Process = z.infer<typeof Process>;

export const Root = z.looseObject({
  path: z.string().check(z.minLength(1)),
  readonly: z.optional(z.boolean()),
});

export const IdMapping = z.looseObject({ containerID: u32, hostID: u32, size: u32 });
export type IdMapping = z.infer<typeof IdMapping>;

export const Mount = z.looseObject({
  destination: z.string().check(z.minLength(1)),
  source: z.optional(z.string()),
  type: z.optional(z.string()),
  options: z.optional(z.array(z.string())),
  uidMappings: z.optional(z.array(IdMapping)),
  gidMappings: z.optional(z.array(IdMapping)),
});
export type Mount = z.infer<typeof Mount>;

export const Hook = z.looseObject({
  path: z.string().check(z.startsWith("/", "hook path must be absolute")),
  args: z.optional(z.array(z.string())),
  env: z.optional(z.array(z.string())),
  timeout: z.optional(z.int().check(z.positive())),
});
export type Hook = z.infer<typeof Hook>;

export const Hooks = z.looseObject({
  prestart: z.optional(z.array(Hook)),
  createRuntime: z.optional(z.array(Hook)),
  createContainer: z.optional(z.array(Hook)),
  startContainer: z.optional(z.array(Hook)),
  poststart: z.optional(z.array(Hook)),
  poststop: z.optional(z.array(Hook)),
});
export type Hooks = z.infer<typeof Hooks>;

export const NAMESPACE_TYPES = ["pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"] as const;
export const NamespaceType = z.enum(NAMESPACE_TYPES);
export type NamespaceType = z.infer<typeof NamespaceType>;
export const Namespace = z.looseObject({ type: NamespaceType, path: z.optional(z.string()) });
export type Namespace = z.infer<typeof Namespace>;

export const Device = z.looseObject({
  type: z.enum(["c", "b", "u", "p"]),
  path: z.string().check(z.startsWith("/")),
  major: z.optional(i64),
  minor: z.optional(i64),
  fileMode: z.optional(u32),
  uid: z.optional(u32),
  gid: z.optional(u32),
});
export type Device = z.infer<typeof Device>;

export const DeviceCgroupRule = z.looseObject({
  allow: z.boolean(),
  type: z.optional(z.enum(["a", "c", "b"])),
  major: z.nullish(i64),
  minor: z.nullish(i64),
  access: z.optional(z.string().check(z.regex(/^[rwm]*$/))),
});
export type DeviceCgroupRule = z.infer<typeof DeviceCgroupRule>;

const WeightDevice = z.looseObject({
  major: i64,
  minor: i64,
  weight: z.optional(z.int()),
  leafWeight: z.optional(z.int()),
});
const ThrottleDevice = z.looseObject({ major: i64, minor: i64, rate: u64 });

export const Resources = z.looseObject({
  devices: z.optional(z.array(DeviceCgroupRule)),
  memory: z.optional(
    z.looseObject({
      limit: z.optional(i64),
      reservation: z.optional(i64),
      swap: z.optional(i64),
      kernel: z.optional(i64),
      kernelTCP: z.optional(i64),
      swappiness: z.optional(u64),
      disableOOMKiller: z.optional(z.boolean()),
      useHierarchy: z.optional(z.boolean()),
      checkBeforeUpdate: z.optional(z.boolean()),
    }),
  ),
  cpu: z.optional(
    z.looseObject({
      shares: z.optional(u64),
      quota: z.optional(i64),
      burst: z.optional(u64),
      period: z.optional(u64),
      realtimeRuntime: z.optional(i64),
      realtimePeriod: z.optional(u64),
      cpus: z.optional(z.string()),
      mems: z.optional(z.string()),
      idle: z.optional(i64),
    }),
  ),
  blockIO: z.optional(
    z.looseObject({
      weight: z.optional(z.int().check(z.minimum(10), z.maximum(1000))),
      leafWeight: z.optional(z.int()),
      weightDevice: z.optional(z.array(WeightDevice)),
      throttleReadBpsDevice: z.optional(z.array(ThrottleDevice)),
      throttleWriteBpsDevice: z.optional(z.array(ThrottleDevice)),
      throttleReadIOPSDevice: z.optional(z.array(ThrottleDevice)),
      throttleWriteIOPSDevice: z.optional(z.array(ThrottleDevice)),
    }),
  ),
  hugepageLimits: z.optional(z.array(z.looseObject({ pageSize: z.string(), limit: u64 }))),
  network: z.optional(
    z.looseObject({
      classID: z.optional(u32),
      priorities: z.optional(z.array(z.looseObject({ name: z.string(), priority: u32 }))),
    }),
  ),
  pids: z.optional(z.looseObject({ limit: i64 })),
  rdma: z.optional(
    z.record(z.string(), z.looseObject({ hcaHandles: z.optional(u32), hcaObjects: z.optional(u32) })),
  ),
  unified: z.optional(StringMap),
});
export type Resources = z.infer<typeof Resources>;

export const SECCOMP_ACTIONS = [
  "SCMP_ACT_KILL",
  "SCMP_ACT_KILL_PROCESS",
  "SCMP_ACT_KILL_THREAD",
  "SCMP_ACT_TRAP",
  "SCMP_ACT_ERRNO",
  "SCMP_ACT_TRACE",
  "SCMP_ACT_ALLOW",
  "SCMP_ACT_LOG",
  "SCMP_ACT_NOTIFY",
] as const;
export const SeccompAction = z.enum(SECCOMP_ACTIONS);
export type SeccompAction = z.infer<typeof SeccompAction>;

export const SECCOMP_OPERATORS = [
  "SCMP_CMP_NE",
  "SCMP_CMP_LT",
  "SCMP_CMP_LE",
  "SCMP_CMP_EQ",
  "SCMP_CMP_GE",
  "SCMP_CMP_GT",
  "SCMP_CMP_MASKED_EQ",
] as const;

export const SeccompArg = z.looseObject({
  index: z.int().check(z.minimum(0), z.maximum(5)),
  value: u64,
  valueTwo: z.optional(u64),
  op: z.enum(SECCOMP_OPERATORS),
});
export type SeccompArg = z.infer<typeof SeccompArg>;

export const SeccompSyscall = z.looseObject({
  names: z.array(z.string()).check(z.minLength(1)),
  action: SeccompAction,
  errnoRet: z.optional(u32),
  args: z.optional(z.array(SeccompArg)),
});
export type SeccompSyscall = z.infer<typeof SeccompSyscall>;

export const Seccomp = z.looseObject({
  defaultAction: SeccompAction,
  defaultErrnoRet: z.optional(u32),
  architectures: z.optional(z.array(z.string().check(z.regex(/^SCMP_ARCH_[A-Z0-9_]+$/)))),
  flags: z.optional(z.array(z.string())),
  listenerPath: z.optional(z.string()),
  listenerMetadata: z.optional(z.string()),
  syscalls: z.optional(z.array(SeccompSyscall)),
});
export type Seccomp = z.infer<typeof Seccomp>;

export const Linux = z.looseObject({
  namespaces: z.optional(z.array(Namespace)),
  uidMappings: z.optional(z.array(IdMapping)),
  gidMappings: z.optional(z.array(IdMapping)),
  timeOffsets: z.optional(
    z.record(z.string(), z.looseObject({ secs: z.optional(i64), nanosecs: z.optional(u32) })),
  ),
  devices: z.optional(z.array(Device)),
  cgroupsPath: z.optional(z.string()),
  resources: z.optional(Resources),
  rootfsPropagation: z.optional(
    z.enum(["private", "shared", "slave", "unbindable", "rprivate", "rshared", "rslave", "runbindable", ""]),
  ),
  seccomp: z.optional(Seccomp),
  sysctl: z.optional(StringMap),
  maskedPaths: z.optional(z.array(z.string())),
  readonlyPaths: z.optional(z.array(z.string())),
  mountLabel: z.optional(z.string()),
  intelRdt: z.optional(z.looseObject({})),
  personality: z.optional(
    z.looseObject({ domain: z.enum(["LINUX", "LINUX32"]), flags: z.optional(z.array(z.string())) }),
  ),
});
export type Linux = z.infer<typeof Linux>;

export const RuntimeConfig = z.looseObject({
  ociVersion: OciVersion,
  process: z.optional(Process),
  root: z.optional(Root),
  hostname: z.optional(z.string()),
  domainname: z.optional(z.string()),
  mounts: z.optional(z.array(Mount)),
  hooks: z.optional(Hooks),
  annotations: z.optional(StringMap),
  linux: z.optional(Linux),
});
export type RuntimeConfig = z.infer<typeof RuntimeConfig>;

// Defined in runtime.ts (no zod) so that runtimes can name it without building these schemas.
export { OCI_RUNTIME_SPEC_VERSION } from "./runtime.ts";
