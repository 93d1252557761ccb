import { posix } from "node:path";
import { MagikError } from "@magikrun/spec/errors";
import type {
  Hook,
  Linux,
  Mount,
  NamespaceType,
  Process,
  RuntimeConfig,
} from "@magikrun/spec/runtime-config";
import { MS, PROPAGATION_OPTIONS, parseMountOptions } from "./mount-options.ts";
import { OP, type PlannedOp } from "./plan-encoder.ts";

/** clone(2) flags for the namespaces clone can create. */
export const CLONE_NS: Record<Exclude<NamespaceType, "time">, number> = {
  mount: 0x00020000,
  uts: 0x04000000,
  ipc: 0x08000000,
  user: 0x10000000,
  pid: 0x20000000,
  network: 0x40000000,
  cgroup: 0x02000000,
};

/** setns/unshare flag of a time namespace (clone(2) cannot create one: the reaper does, see launcher.c). */
export const CLONE_NEWTIME = 0x00000080;

/** Hooks the container's process runs itself, with the state JSON readable from `stateFd` (offset 0). */
export interface HookPlan {
  hooks: readonly Hook[];
  stateFd: number;
}

const RLIMITS: Record<string, number> = {
  RLIMIT_CPU: 0,
  RLIMIT_FSIZE: 1,
  RLIMIT_DATA: 2,
  RLIMIT_STACK: 3,
  RLIMIT_CORE: 4,
  RLIMIT_RSS: 5,
  RLIMIT_NPROC: 6,
  RLIMIT_NOFILE: 7,
  RLIMIT_MEMLOCK: 8,
  RLIMIT_AS: 9,
  RLIMIT_LOCKS: 10,
  RLIMIT_SIGPENDING: 11,
  RLIMIT_MSGQUEUE: 12,
  RLIMIT_NICE: 13,
  RLIMIT_RTPRIO: 14,
  RLIMIT_RTTIME: 15,
};

/** Devices every container gets (runtime-spec "Default Devices"). */
export const DEFAULT_DEVICES = [
  { path: "/dev/null", major: 1, minor: 3 },
  { path: "/dev/zero", major: 1, minor: 5 },
  { path: "/dev/full", major: 1, minor: 7 },
  { path: "/dev/random", major: 1, minor: 8 },
  { path: "/dev/urandom", major: 1, minor: 9 },
  { path: "/dev/tty", major: 5, minor: 0 },
] as const;

const DEV_SYMLINKS: [target: string, link: string][] = [
  ["/proc/self/fd", "/dev/fd"],
  ["/proc/self/fd/0", "/dev/stdin"],
  ["/proc/self/fd/1", "/dev/stdout"],
  ["/proc/self/fd/2", "/dev/stderr"],
  ["pts/ptmx", "/dev/ptmx"],
];

/** MAX_ARGS in launcher.c: the child builds argv and envp on its stack. */
export const MAX_EXEC_STRINGS = 510;

const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;
const S_IFIFO = 0o010000;

/** What the planner needs from outside the config: already-opened fds and host facts. */
export interface PlanInputs {
  config: RuntimeConfig;
  /** Absolute, symlink-free host path of the rootfs. */
  rootfs: string;
  /** Bundle directory: relative bind sources resolve against it. */
  bundle: string;
  /** fds of namespaces to join, by type (opened O_CLOEXEC by the caller). */
  joinFds: Partial<Record<NamespaceType, number>>;
  /** Read end of the exec fifo (opened non-blocking by the runtime), or undefined to run straight to execve. */
  fifoFd?: number;
  stdioFds?: [number, number, number];
  consoleSocket?: string;
  noPivot?: boolean;
  /** Bitmask of the named capabilities (from the capability table). */
  capabilityMask(names: readonly string[]): bigint;
  lastCap: number;
  /** Compiled seccomp program (8-byte sock_filter entries) and its filter flags, if the config has one. */
  seccomp?: { program: Uint8Array; flags: number };
  /** Receives settings that are accepted but not applied. */
  warn?: (message: string) => void;
  /** Receives expected, harmless conditions (runc says nothing about them): the debug log. */
  debug?: (message: string) => void;
  /** Host paths that say whether a bind source is a file or a directory (stat is I/O: injected). */
  isDirectory(hostPath: string): boolean;
  /** Host cgroup v1/v2 mounts to expose for `type: cgroup` mounts: name → host directory of this container. */
  cgroupBinds?: { name: string; hostPath: string }[];
  /** Stop after the mounts (MSG_HOOKS) until the runtime has run the prestart and createRuntime hooks. */
  hookSync?: boolean;
  /** Run in the container's namespaces after the mounts, before pivot_root (paths resolve on the host). */
  createContainerHooks?: HookPlan;
  /** Run in the container after start released it, before its program (paths resolve in the container). */
  startContainerHooks?: HookPlan;
}

export interface LaunchPlan {
  ops: PlannedOp[];
  cloneFlags: number;
  newNamespaces: NamespaceType[];
  userNs: boolean;
  /** Host fd of a pid namespace to join; the reaper enters it before cloning the container. */
  pidNsFd: number;
}

function invalid(message: string, details: Record<string, unknown>, hint?: string): MagikError {
  return new MagikError("InvalidBundle", message, hint ? { details, hint } : { details });
}

/** Turns a validated config.json into the launcher's operations. Pure: every host fact arrives in `inputs`. */
export function planLaunch(inputs: PlanInputs): LaunchPlan {
  const { config } = inputs;
  const linux = config.linux ?? {};
  const proc = config.process;
  if (!proc?.args?.length) {
    throw invalid("config.json has no process.args", { field: "process.args" });
  }
  const ops: PlannedOp[] = [];
  const add = (op: PlannedOp["op"], label: string, ints: (number | bigint)[] = [], strs: string[] = []) =>
    ops.push({ op, label, ints: ints.map((v) => BigInt(v)), strs });

  // Namespaces: new ones become clone flags; joined ones are entered first (user first, as the kernel needs).
  let cloneFlags = 0;
  const newNamespaces: NamespaceType[] = [];
  const seen = new Set<string>();
  let pidNsFd = -1;
  for (const ns of linux.namespaces ?? []) {
    if (seen.has(ns.type)) throw invalid(`namespace ${ns.type} is listed twice`, { namespace: ns.type });
    seen.add(ns.type);
    if (ns.type === "time") {
      // The reaper enters (or creates) it before the clone: these records must lead the plan.
      if (ns.path) {
        const fd = inputs.joinFds.time;
        if (fd === undefined) throw invalid("namespace path for time was not opened", { path: ns.path });
        add(OP.REAPER_SETNS, `join time namespace ${ns.path}`, [fd, CLONE_NEWTIME]);
      } else {
        newNamespaces.push("time");
      }
      continue;
    }
    if (ns.path) {
      const fd = inputs.joinFds[ns.type];
      if (fd === undefined) throw invalid(`namespace path for ${ns.type} was not opened`, { path: ns.path });
      if (ns.type === "pid") pidNsFd = fd;
      continue;
    }
    if (ns.type === "cgroup") continue; // unshared after the cgroup is joined, so its root is the container's cgroup
    cloneFlags |= CLONE_NS[ns.type];
    newNamespaces.push(ns.type);
  }
  planTimeOffsets(linux.timeOffsets, newNamespaces.includes("time"), add);
  const userNs = newNamespaces.includes("user");
  const joinOrder = (linux.namespaces ?? []).filter(
    (ns) => ns.path && ns.type !== "pid" && ns.type !== "time",
  );
  joinOrder.sort((a, b) => Number(b.type === "user") - Number(a.type === "user"));
  for (const ns of joinOrder) {
    add(OP.SETNS, `join ${ns.type} namespace ${ns.path}`, [inputs.joinFds[ns.type]!, 0]);
  }
  if (!seen.has("mount") || (linux.namespaces ?? []).some((ns) => ns.type === "mount" && ns.path)) {
    if (!seen.has("mount")) {
      throw invalid("linux.namespaces must include a new mount namespace", { namespaces: [...seen] });
    }
  }
  if (userNs && !(linux.uidMappings?.length && linux.gidMappings?.length)) {
    throw invalid("a new user namespace needs linux.uidMappings and linux.gidMappings", {
      uidMappings: linux.uidMappings ?? null,
      gidMappings: linux.gidMappings ?? null,
    });
  }
  if ((config.hostname || config.domainname) && !newNamespaces.includes("uts")) {
    throw invalid("hostname/domainname need a new uts namespace", { hostname: config.hostname ?? null });
  }

  add(OP.SYNC_WAIT, "wait for the runtime (id maps, cgroup)");
  if (userNs) {
    add(OP.SETRESGID, "become root in the user namespace (gid)", [0]);
    add(OP.SETRESUID, "become root in the user namespace (uid)", [0]);
  }
  if (seen.has("cgroup") && !(linux.namespaces ?? []).some((ns) => ns.type === "cgroup" && ns.path)) {
    add(OP.UNSHARE, "unshare cgroup namespace", [CLONE_NS.cgroup]);
    newNamespaces.push("cgroup");
  }
  if (config.hostname !== undefined)
    add(OP.SETHOSTNAME, `set hostname ${config.hostname}`, [], [config.hostname]);
  if (config.domainname !== undefined) {
    add(OP.SETDOMAINNAME, `set domainname ${config.domainname}`, [], [config.domainname]);
  }
  if (proc.oomScoreAdj !== undefined) {
    add(OP.WRITE_FILE, "write oom_score_adj", [], ["/proc/self/oom_score_adj", String(proc.oomScoreAdj)]);
  }

  // Filesystem: as runc 1.1.5, rootfsPropagation (default rslave) goes to the namespace's copy of the host's
  // tree before the rootfs is bound, and nowhere after: mounts under the rootfs inherit what it leaves there.
  const rootPropagation = linux.rootfsPropagation || "rslave";
  const rootFlags = PROPAGATION_OPTIONS[rootPropagation]!;
  // Only after a shared or non-recursive change can the rootfs's parent mount still be shared; then it is made
  // private (runc's rootfsParentMountPrivate), or the bind would propagate and pivot_root would refuse it.
  const parentMaybeShared = (rootFlags & MS.SHARED) !== 0 || (rootFlags & MS.REC) === 0;
  add(
    OP.MOUNT_ROOT_PROP,
    `make / ${rootPropagation}${parentMaybeShared ? ", the rootfs's parent mount private if shared" : ""}`,
    parentMaybeShared ? [rootFlags, 1] : [rootFlags],
    parentMaybeShared ? [inputs.rootfs] : [],
  );
  add(OP.BIND_ROOTFS, `bind rootfs ${inputs.rootfs}`, [], [inputs.rootfs]);
  for (const mount of config.mounts ?? []) planMount(mount, inputs, add);
  planDevices(inputs, userNs, add);
  if (inputs.hookSync) add(OP.HOOKS_SYNC, "wait for the prestart and createRuntime hooks");
  planHooks("createContainer", inputs.createContainerHooks, add);
  if (proc.terminal) {
    if (!inputs.consoleSocket) {
      throw new MagikError("InvalidInput", "process.terminal is true but no console socket was given", {
        details: { terminal: true },
        hint: "Pass --console-socket (CLI) or consoleSocket (API), or set process.terminal to false.",
      });
    }
    add(OP.CONSOLE_CONNECT, `connect to console socket ${inputs.consoleSocket}`, [], [inputs.consoleSocket]);
  }
  // As runc: without pivot_root the host's mounts stay in the namespace under the chroot, and a private root
  // would cut the container off the host's unmounts (the host could never fully remove what it mounted there).
  if (inputs.noPivot && /^r?private$/.test(linux.rootfsPropagation ?? "")) {
    throw invalid(
      `rootfsPropagation ${linux.rootfsPropagation} is not safe without pivot_root`,
      { rootfsPropagation: linux.rootfsPropagation, noPivot: true },
      "Drop --no-pivot, or use rslave (the default) or rshared.",
    );
  }
  add(OP.PIVOT, inputs.noPivot ? "move rootfs to / and chroot" : "pivot_root into the rootfs", [
    inputs.noPivot ? 1 : 0,
  ]);
  for (const [key, value] of Object.entries(linux.sysctl ?? {})) {
    if (!/^[A-Za-z0-9_.-]+$/.test(key) || key.includes("..")) {
      throw invalid(`invalid sysctl name ${JSON.stringify(key)}`, { sysctl: key });
    }
    add(OP.WRITE_FILE, `set sysctl ${key}`, [], [`/proc/sys/${key.replaceAll(".", "/")}`, value]);
  }
  for (const path of linux.maskedPaths ?? [])
    add(OP.MASK, `mask ${path}`, [], [absolute(path, "maskedPaths")]);
  for (const path of linux.readonlyPaths ?? []) {
    add(OP.READONLY, `make ${path} read-only`, [], [absolute(path, "readonlyPaths")]);
  }
  if (config.root?.readonly) add(OP.REMOUNT_ROOT_RO, "remount / read-only");

  planProcess(proc, inputs, add, ops);
  return { ops, cloneFlags, newNamespaces, userNs, pidNsFd };
}

export type ProcessPlanInputs = Pick<
  PlanInputs,
  "fifoFd" | "stdioFds" | "capabilityMask" | "lastCap" | "seccomp" | "warn" | "debug" | "startContainerHooks"
>;

/** The process part, shared by create and exec: limits, stdio, identity, capabilities, seccomp, execve. */
export function planProcess(proc: Process, inputs: ProcessPlanInputs, add: Add, ops: PlannedOp[]): void {
  if (!proc.args?.length) throw invalid("process.args is empty", { field: "process.args" });
  // Process attributes, then identity and privileges, dropping privileges as late as possible.
  for (const rlimit of proc.rlimits ?? []) {
    const resource = RLIMITS[rlimit.type];
    if (resource === undefined) throw invalid(`unknown rlimit ${rlimit.type}`, { rlimit: rlimit.type });
    add(OP.RLIMIT, `set ${rlimit.type}`, [resource, BigInt(rlimit.soft), BigInt(rlimit.hard)]);
  }
  if (proc.terminal) {
    add(OP.CONSOLE, "set up the console", [proc.consoleSize?.height ?? 0, proc.consoleSize?.width ?? 0]);
  } else {
    add(OP.SETSID, "start a new session");
    if (inputs.stdioFds) add(OP.STDIO, "set up stdio", inputs.stdioFds);
  }
  const caps = proc.capabilities;
  const mask = (names: readonly string[] | undefined) => inputs.capabilityMask(names ?? []);
  const env = proc.env ?? [];
  const path = env.find((e) => e.startsWith("PATH="))?.slice(5) ?? "/usr/local/bin:/usr/bin:/bin";
  const program = proc.args[0]!;
  // cwd and program are checked before `create` returns so that it reports them; the uid changes after start.
  add(OP.CHDIR, `change directory to ${proc.cwd}`, [], [proc.cwd]);
  add(OP.FIND_EXEC, `find executable ${program}`, [], [program, path]);
  if (inputs.fifoFd !== undefined) {
    add(OP.READY, "report ready");
    add(OP.FIFO_WAIT, "wait for start on the exec fifo", [inputs.fifoFd]);
  }
  add(OP.CAPS_BOUNDING, "drop capabilities from the bounding set", [mask(caps?.bounding), inputs.lastCap]);
  add(OP.KEEPCAPS, "keep capabilities across the uid change", [1]);
  add(OP.SETGROUPS, "set additional groups", proc.user.additionalGids ?? []);
  add(OP.SETRESGID, `set gid ${proc.user.gid}`, [proc.user.gid]);
  add(OP.SETRESUID, `set uid ${proc.user.uid}`, [proc.user.uid]);
  if (proc.user.umask !== undefined) add(OP.UMASK, "set umask", [proc.user.umask]);
  const seccomp = inputs.seccomp;
  const seccompOp = () => {
    if (!seccomp) return;
    const { program, flags } = seccomp;
    const ints: bigint[] = [BigInt(program.length / 8), BigInt(flags)];
    const view = new DataView(program.buffer, program.byteOffset, program.byteLength);
    for (let i = 0; i < program.length; i += 8) ints.push(view.getBigInt64(i, true));
    ops.push({ op: OP.SECCOMP, label: "install the seccomp filter", ints, strs: [] });
  };
  // Without no_new_privs the filter needs CAP_SYS_ADMIN, which capset may be about to drop.
  if (!proc.noNewPrivileges) seccompOp();
  add(OP.CAPSET, "set capabilities", [mask(caps?.effective), mask(caps?.permitted), mask(caps?.inheritable)]);
  // The kernel raises an ambient capability only if it is permitted and inheritable. runc's own default spec
  // lists ambient capabilities without an inheritable set, so this is the common case, not a mistake: runc 1.1
  // ignores the failed raise silently (runc >= 1.2 logs it from runc init). It goes to the debug log here.
  const ambient = (caps?.ambient ?? []).filter((name) => {
    const usable = caps?.permitted?.includes(name) && caps?.inheritable?.includes(name);
    if (!usable)
      inputs.debug?.(`ambient capability ${name} is not also permitted and inheritable; not raised`);
    return usable;
  });
  add(OP.AMBIENT, "set ambient capabilities", [mask(ambient)]);
  // As runc: startContainer hooks run with the process's identity, capabilities and no_new_privs, before a
  // no_new_privs seccomp filter (installed as late as possible).
  if (proc.noNewPrivileges) add(OP.NNP, "set no_new_privs");
  planHooks("startContainer", inputs.startContainerHooks, add);
  if (proc.noNewPrivileges) seccompOp();
  if (proc.args.length > MAX_EXEC_STRINGS || env.length > MAX_EXEC_STRINGS) {
    throw invalid(`process.args and process.env are limited to ${MAX_EXEC_STRINGS} entries each`, {
      args: proc.args.length,
      env: env.length,
    });
  }
  add(OP.EXEC, `execute ${program}`, [proc.args.length, env.length], [...proc.args, ...env]);
}

/** The longest hook timeout the launcher's poll can take (ms in an int). */
const MAX_HOOK_TIMEOUT_MS = 2 ** 31 - 1;

function planHooks(phase: "createContainer" | "startContainer", plan: HookPlan | undefined, add: Add): void {
  for (const [index, hook] of (plan?.hooks ?? []).entries()) {
    if (!hook.path.startsWith("/")) throw invalid(`${phase} hook path must be absolute`, { path: hook.path });
    const argv = hook.args?.length ? hook.args : [hook.path];
    const env = hook.env ?? [];
    if (argv.length > MAX_EXEC_STRINGS || env.length > MAX_EXEC_STRINGS) {
      throw invalid(`hook args and env are limited to ${MAX_EXEC_STRINGS} entries each`, { path: hook.path });
    }
    const timeoutMs = hook.timeout ? Math.min(hook.timeout * 1000, MAX_HOOK_TIMEOUT_MS) : 0;
    add(
      OP.HOOK,
      `${phase} hook ${index} (${hook.path})`,
      [plan!.stateFd, timeoutMs, argv.length, env.length],
      [hook.path, ...argv, ...env],
    );
  }
}

const NSEC_PER_SEC = 1_000_000_000;

/** linux.timeOffsets: only for a new time namespace (offsets apply before any process enters it). */
function planTimeOffsets(offsets: Linux["timeOffsets"], newTimeNs: boolean, add: Add): void {
  const entries = Object.entries(offsets ?? {});
  if (entries.length && !newTimeNs) {
    throw invalid("linux.timeOffsets needs a new time namespace in linux.namespaces", {
      field: "linux.timeOffsets",
    });
  }
  if (!newTimeNs) return;
  const values = { monotonic: [0n, 0n], boottime: [0n, 0n] };
  for (const [clock, offset] of entries) {
    if (clock !== "monotonic" && clock !== "boottime") {
      throw invalid(`linux.timeOffsets: unknown clock ${clock}`, { clock }, "Use monotonic or boottime.");
    }
    const nanosecs = offset.nanosecs ?? 0;
    if (nanosecs >= NSEC_PER_SEC) {
      throw invalid(`linux.timeOffsets.${clock}.nanosecs must be below 10^9`, { clock, nanosecs });
    }
    values[clock] = [BigInt(offset.secs ?? 0), BigInt(nanosecs)];
  }
  add(OP.REAPER_TIMENS, "create the time namespace and write its offsets", [
    ...values.monotonic,
    ...values.boottime,
  ]);
}

function absolute(path: string, field: string): string {
  if (!path.startsWith("/")) throw invalid(`${field} entries must be absolute: ${path}`, { field, path });
  return posix.normalize(path);
}

export type Add = (op: PlannedOp["op"], label: string, ints?: (number | bigint)[], strs?: string[]) => void;

function planMount(mount: Mount, inputs: PlanInputs, add: Add): void {
  const destination = absolute(mount.destination, "mounts[].destination");
  if (destination === "/") throw invalid("a mount cannot cover /", { destination });
  if (mount.uidMappings || mount.gidMappings) {
    throw new MagikError("NotSupported", "id-mapped mounts are not supported", {
      details: { destination },
      hint: "Remove uidMappings/gidMappings from the mount.",
    });
  }
  const options = parseMountOptions(mount.options, destination);
  const type = mount.type ?? (options.isBind ? "bind" : "");
  const label = `mount ${type || "?"} on ${destination}`;
  if (type === "cgroup" || type === "cgroup2") {
    // The container sees its own cgroups: a tmpfs holding a bind of each of its hierarchies. As in runc, the
    // tmpfs stays writable and the "ro" option makes the hierarchies read-only.
    const base = options.flags & (MS.NOSUID | MS.NODEV | MS.NOEXEC | MS.RELATIME);
    add(
      OP.MOUNT,
      `mount tmpfs for cgroups on ${destination}`,
      [base, 0, 0, 0],
      ["tmpfs", destination, "tmpfs", "mode=755"],
    );
    const remount = (options.flags & MS.RDONLY) | base;
    for (const bind of inputs.cgroupBinds ?? []) {
      add(
        OP.MOUNT,
        `bind cgroup ${bind.name} on ${destination}/${bind.name}`,
        [MS.BIND | MS.REC, 0, 0, remount],
        [bind.hostPath, `${destination}/${bind.name}`, "", ""],
      );
    }
    return;
  }
  if (options.isBind) {
    if (!mount.source) throw invalid(`bind mount on ${destination} has no source`, { destination });
    const source = posix.resolve(inputs.bundle, mount.source);
    let isDir: boolean;
    try {
      isDir = inputs.isDirectory(source);
    } catch (err) {
      throw new MagikError("InvalidBundle", `bind mount source ${source} does not exist`, {
        cause: err,
        details: { source, destination },
      });
    }
    const bindFlags = options.flags & (MS.BIND | MS.REC);
    const remount = options.flags & ~(MS.BIND | MS.REC | MS.REMOUNT);
    add(
      OP.MOUNT,
      label,
      [bindFlags, options.propagation, isDir ? 0 : 1, remount],
      [source, destination, "", ""],
    );
    return;
  }
  const source = mount.source ?? type;
  add(OP.MOUNT, label, [options.flags, options.propagation, 0, 0], [source, destination, type, options.data]);
}

function planDevices(inputs: PlanInputs, userNs: boolean, add: Add): void {
  const linux = inputs.config.linux ?? {};
  const devices = new Map<string, { mode: number; major: number; minor: number; uid: number; gid: number }>();
  for (const d of DEFAULT_DEVICES) {
    devices.set(d.path, { mode: S_IFCHR | 0o666, major: d.major, minor: d.minor, uid: 0, gid: 0 });
  }
  for (const d of linux.devices ?? []) {
    const path = absolute(d.path, "linux.devices[].path");
    if (!path.startsWith("/dev/")) throw invalid(`device ${path} is outside /dev`, { path });
    const typeBits = d.type === "b" ? S_IFBLK : d.type === "p" ? S_IFIFO : S_IFCHR;
    if (d.type !== "p" && (d.major === undefined || d.minor === undefined)) {
      throw invalid(`device ${path} needs major and minor`, { path });
    }
    devices.set(path, {
      mode: typeBits | ((d.fileMode ?? 0o666) & 0o7777),
      major: d.major ?? 0,
      minor: d.minor ?? 0,
      uid: d.uid ?? 0,
      gid: d.gid ?? 0,
    });
  }
  for (const [path, d] of devices) {
    // In a user namespace mknod is refused: the host's node is bind-mounted instead, as runc does.
    add(
      OP.MKNOD,
      `${userNs ? "bind" : "create"} device ${path}`,
      [d.mode, d.major, d.minor, d.uid, d.gid],
      [path, path],
    );
  }
  for (const [target, link] of DEV_SYMLINKS) add(OP.SYMLINK, `symlink ${link}`, [], [target, link]);
}
