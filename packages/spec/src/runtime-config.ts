import { z } from "zod";

/**
 * OCI runtime-spec `config.json`, versions 1.0.2 through 1.2. Objects are loose: the spec says unknown
 * properties MUST be ignored, and runtimes that reject them break bundles made by newer tools.
 */

const u32 = z.number().int().min(0).max(0xffff_ffff);
// JSON numbers past 2^53 (RLIM_INFINITY is 2^64-1) arrive rounded; they are still integers, so no safe-int check.
const i64 = z.number().refine(Number.isInteger, "must be an integer");
const u64 = z.number().min(0).refine(Number.isInteger, "must be a non-negative integer");
const StringMap = z.record(z.string(), z.string());

export const OciVersion = z
  .string()
  .regex(/^1\.[0-9]+\.[0-9]+(-[0-9A-Za-z.+-]+)?$/, "ociVersion must be 1.x.y");

export const User = z.looseObject({
  uid: u32,
  gid: u32,
  umask: u32.optional(),
  additionalGids: z.array(u32).optional(),
  username: z.string().optional(),
});

export const CAPABILITY_NAME = /^CAP_[A-Z_]+$/;
const CapList = z.array(z.string().regex(CAPABILITY_NAME, "capability names look like CAP_XXX"));
export const Capabilities = z.looseObject({
  bounding: CapList.optional(),
  effective: CapList.optional(),
  inheritable: CapList.optional(),
  permitted: CapList.optional(),
  ambient: CapList.optional(),
});
export type Capabilities = z.infer<typeof Capabilities>;

export const Rlimit = z.looseObject({
  type: z.string().regex(/^RLIMIT_[A-Z]+$/),
  soft: u64,
  hard: u64,
});
export type Rlimit = z.infer<typeof Rlimit>;

export const ConsoleSize = z.looseObject({ height: u32, width: u32 });

export const Process = z.looseObject({
  terminal: z.boolean().optional(),
  consoleSize: ConsoleSize.optional(),
  user: User,
  args: z.array(z.string()).min(1, "process.args needs at least the program").optional(),
  commandLine: z.string().optional(),
  env: z.array(z.string()).optional(),
  cwd: z.string().startsWith("/", "process.cwd must be absolute"),
  capabilities: Capabilities.optional(),
  rlimits: z.array(Rlimit).optional(),
  noNewPrivileges: z.boolean().optional(),
  apparmorProfile: z.string().optional(),
  oomScoreAdj: z.number().int().min(-1000).max(1000).optional(),
  selinuxLabel: z.string().optional(),
  ioPriority: z.looseObject({ class: z.string(), priority: z.number().int() }).optional(),
  scheduler: z.looseObject({ policy: z.string() }).optional(),
  execCPUAffinity: z.looseObject({ initial: z.string().optional(), final: z.string().optional() }).optional(),
});
export type Process = z.infer<typeof Process>;

export const Root = z.looseObject({ path: z.string().min(1), readonly: z.boolean().optional() });

export const IdMapping = z.looseObject({ containerID: u32, hostID: u32, size: u32 });
export type IdMapping = z.infer<typeof IdMapping>;

export const Mount = z.looseObject({
  destination: z.string().min(1),
  source: z.string().optional(),
  type: z.string().optional(),
  options: z.array(z.string()).optional(),
  uidMappings: z.array(IdMapping).optional(),
  gidMappings: z.array(IdMapping).optional(),
});
export type Mount = z.infer<typeof Mount>;

export const Hook = z.looseObject({
  path: z.string().startsWith("/", "hook path must be absolute"),
  args: z.array(z.string()).optional(),
  env: z.array(z.string()).optional(),
  timeout: z.number().int().positive().optional(),
});
export type Hook = z.infer<typeof Hook>;

export const Hooks = z.looseObject({
  prestart: z.array(Hook).optional(),
  createRuntime: z.array(Hook).optional(),
  createContainer: z.array(Hook).optional(),
  startContainer: z.array(Hook).optional(),
  poststart: z.array(Hook).optional(),
  poststop: z.array(Hook).optional(),
});
export type Hooks = z.infer<typeof Hooks>;

export const NAMESPACE_TYPES = ["pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"] as const;
export const NamespaceType = z.enum(NAMESPACE_TYPES);
export type NamespaceType = z.infer<typeof NamespaceType>;
export const Namespace = z.looseObject({ type: NamespaceType, path: z.string().optional() });
export type Namespace = z.infer<typeof Namespace>;

export const Device = z.looseObject({
  type: z.enum(["c", "b", "u", "p"]),
  path: z.string().startsWith("/"),
  major: i64.optional(),
  minor: i64.optional(),
  fileMode: u32.optional(),
  uid: u32.optional(),
  gid: u32.optional(),
});
export type Device = z.infer<typeof Device>;

export const DeviceCgroupRule = z.looseObject({
  allow: z.boolean(),
  type: z.enum(["a", "c", "b"]).optional(),
  major: i64.nullish(),
  minor: i64.nullish(),
  access: z
    .string()
    .regex(/^[rwm]*$/)
    .optional(),
});
export type DeviceCgroupRule = z.infer<typeof DeviceCgroupRule>;

const WeightDevice = z.looseObject({
  major: i64,
  minor: i64,
  weight: z.number().int().optional(),
  leafWeight: z.number().int().optional(),
});
const ThrottleDevice = z.looseObject({ major: i64, minor: i64, rate: u64 });

export const Resources = z.looseObject({
  devices: z.array(DeviceCgroupRule).optional(),
  memory: z
    .looseObject({
      limit: i64.optional(),
      reservation: i64.optional(),
      swap: i64.optional(),
      kernel: i64.optional(),
      kernelTCP: i64.optional(),
      swappiness: u64.optional(),
      disableOOMKiller: z.boolean().optional(),
      useHierarchy: z.boolean().optional(),
      checkBeforeUpdate: z.boolean().optional(),
    })
    .optional(),
  cpu: z
    .looseObject({
      shares: u64.optional(),
      quota: i64.optional(),
      burst: u64.optional(),
      period: u64.optional(),
      realtimeRuntime: i64.optional(),
      realtimePeriod: u64.optional(),
      cpus: z.string().optional(),
      mems: z.string().optional(),
      idle: i64.optional(),
    })
    .optional(),
  blockIO: z
    .looseObject({
      weight: z.number().int().min(10).max(1000).optional(),
      leafWeight: z.number().int().optional(),
      weightDevice: z.array(WeightDevice).optional(),
      throttleReadBpsDevice: z.array(ThrottleDevice).optional(),
      throttleWriteBpsDevice: z.array(ThrottleDevice).optional(),
      throttleReadIOPSDevice: z.array(ThrottleDevice).optional(),
      throttleWriteIOPSDevice: z.array(ThrottleDevice).optional(),
    })
    .optional(),
  hugepageLimits: z.array(z.looseObject({ pageSize: z.string(), limit: u64 })).optional(),
  network: z
    .looseObject({
      classID: u32.optional(),
      priorities: z.array(z.looseObject({ name: z.string(), priority: u32 })).optional(),
    })
    .optional(),
  pids: z.looseObject({ limit: i64 }).optional(),
  rdma: z
    .record(z.string(), z.looseObject({ hcaHandles: u32.optional(), hcaObjects: u32.optional() }))
    .optional(),
  unified: StringMap.optional(),
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
  index: z.number().int().min(0).max(5),
  value: u64,
  valueTwo: u64.optional(),
  op: z.enum(SECCOMP_OPERATORS),
});
export type SeccompArg = z.infer<typeof SeccompArg>;

export const SeccompSyscall = z.looseObject({
  names: z.array(z.string()).min(1),
  action: SeccompAction,
  errnoRet: u32.optional(),
  args: z.array(SeccompArg).optional(),
});
export type SeccompSyscall = z.infer<typeof SeccompSyscall>;

export const Seccomp = z.looseObject({
  defaultAction: SeccompAction,
  defaultErrnoRet: u32.optional(),
  architectures: z.array(z.string().regex(/^SCMP_ARCH_[A-Z0-9_]+$/)).optional(),
  flags: z.array(z.string()).optional(),
  listenerPath: z.string().optional(),
  listenerMetadata: z.string().optional(),
  syscalls: z.array(SeccompSyscall).optional(),
});
export type Seccomp = z.infer<typeof Seccomp>;

export const Linux = z.looseObject({
  namespaces: z.array(Namespace).optional(),
  uidMappings: z.array(IdMapping).optional(),
  gidMappings: z.array(IdMapping).optional(),
  timeOffsets: z
    .record(z.string(), z.looseObject({ secs: i64.optional(), nanosecs: u32.optional() }))
    .optional(),
  devices: z.array(Device).optional(),
  cgroupsPath: z.string().optional(),
  resources: Resources.optional(),
  rootfsPropagation: z
    .enum(["private", "shared", "slave", "unbindable", "rprivate", "rshared", "rslave", "runbindable", ""])
    .optional(),
  seccomp: Seccomp.optional(),
  sysctl: StringMap.optional(),
  maskedPaths: z.array(z.string()).optional(),
  readonlyPaths: z.array(z.string()).optional(),
  mountLabel: z.string().optional(),
  intelRdt: z.looseObject({}).optional(),
  personality: z
    .looseObject({ domain: z.enum(["LINUX", "LINUX32"]), flags: z.array(z.string()).optional() })
    .optional(),
});
export type Linux = z.infer<typeof Linux>;

export const RuntimeConfig = z.looseObject({
  ociVersion: OciVersion,
  process: Process.optional(),
  root: Root.optional(),
  hostname: z.string().optional(),
  domainname: z.string().optional(),
  mounts: z.array(Mount).optional(),
  hooks: Hooks.optional(),
  annotations: StringMap.optional(),
  linux: Linux.optional(),
});
export type RuntimeConfig = z.infer<typeof RuntimeConfig>;

// Defined in runtime.ts (no zod) so that runtimes can name it without building these schemas.
export { OCI_RUNTIME_SPEC_VERSION } from "./runtime.ts";
