import { realpathSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { posix } from "node:path";
import { MagikError } from "@magikrun/spec/errors";
import { enforceLimit } from "@magikrun/spec/limits";
import {
  type CreateOptions,
  OCI_RUNTIME_SPEC_VERSION,
  type StdioTarget,
  validateContainerId,
} from "@magikrun/spec/runtime";
import type {
  Capabilities,
  Device,
  DeviceCgroupRule,
  NamespaceType,
  Resources,
  RuntimeConfig,
} from "@magikrun/spec/runtime-config";
import type { ContainerState } from "@magikrun/spec/state";
import { cgroupLayout, syncCgroupFs } from "../cgroup-sync-fs.ts";
import { type CgroupHandle, createCgroup, planCgroup } from "../cgroups/index.ts";
import { runHooks } from "../hooks.ts";
import { processSecurity } from "../integrations.ts";
import { type LaunchPlan, planLaunch } from "../launch-plan.ts";
import { readProcStat } from "../proc.ts";
import type { StoredContainer } from "../state-store.ts";
import { errnoName, O } from "../syscall.ts";
import { checkUnsupported } from "../unsupported.ts";
import type { RuntimeContext } from "./context.ts";
import { launch } from "./launch.ts";

export interface NativeCreateOptions extends CreateOptions {
  /** runc's --no-pivot: MS_MOVE + chroot instead of pivot_root (for rootfs on ramfs). */
  noPivot?: boolean;
}

export interface Created {
  stored: StoredContainer;
  state: ContainerState;
  notifyFd: number;
}

export function resolveRootfs(bundlePath: string, config: RuntimeConfig): string {
  if (!config.root?.path) {
    throw new MagikError("InvalidBundle", "config.json has no root.path", {
      details: { bundle: bundlePath },
    });
  }
  const path = posix.resolve(bundlePath, config.root.path);
  let real: string;
  try {
    real = realpathSync(path);
  } catch (err) {
    const errno = (err as { code?: string }).code ?? "unknown";
    throw new MagikError("InvalidBundle", `rootfs ${path} cannot be used: ${errno}`, {
      details: { rootfs: path, errno, step: "resolve rootfs" },
      hint: "root.path in config.json must name an existing directory (relative to the bundle).",
    });
  }
  if (!statSync(real).isDirectory()) {
    throw new MagikError("InvalidBundle", `rootfs ${path} is not a directory`, {
      details: { rootfs: path, errno: "ENOTDIR", step: "resolve rootfs" },
    });
  }
  return real;
}

export function openStdio(
  ctx: RuntimeContext,
  target: StdioTarget | undefined,
  fdNo: number,
  opened: number[],
): number {
  if (target === undefined || target === "inherit") return fdNo;
  let fd: number;
  if (target === "ignore") fd = ctx.sys.open("/dev/null", O.RDWR);
  else if ("fd" in target) return target.fd;
  else
    fd = ctx.sys.open(
      target.path,
      (fdNo === 0 ? O.RDONLY : O.WRONLY | O.CREAT) | (target.append ? 0o2000 : 0o1000 * Number(fdNo !== 0)),
      0o644,
    );
  if (fd < 0) {
    throw new MagikError("InvalidInput", `cannot open stdio target: ${errnoName(fd)}`, {
      details: { target, errno: errnoName(fd) },
    });
  }
  opened.push(fd);
  return fd;
}

export async function createContainer(ctx: RuntimeContext, options: NativeCreateOptions): Promise<Created> {
  const id = validateContainerId(options.id, ctx.limits.MAX_CONTAINER_ID_LEN);
  const bundle = options.bundle;
  if (bundle.kind !== "oci") {
    throw new MagikError("InvalidBundle", `the native runtime cannot run a ${bundle.kind} bundle`, {
      details: { kind: bundle.kind },
    });
  }
  const config = bundle.config;
  const rootfs = resolveRootfs(bundle.path, config);
  const linux = config.linux ?? {};
  if (config.process?.terminal && !options.consoleSocket) {
    throw new MagikError("InvalidInput", "process.terminal is true but no console socket was given", {
      details: { terminal: true },
      hint: "Pass --console-socket (CLI) or consoleSocket (API), or set process.terminal to false.",
    });
  }
  checkUnsupported(config, ctx.warn);
  const security = processSecurity(config.process?.capabilities, linux.seccomp, ctx.warn);
  const isDirectory = (p: string) => statSync(p).isDirectory();
  const planInputs = {
    config: withCapabilities(config, security.capabilities),
    rootfs,
    bundle: bundle.path,
    capabilityMask: security.capabilityMask,
    lastCap: security.lastCap,
    isDirectory,
    fifoFd: 0,
    warn: ctx.warn,
    debug: ctx.debug,
    ...(security.seccomp ? { seccomp: security.seccomp } : {}),
    ...(options.consoleSocket ? { consoleSocket: options.consoleSocket } : {}),
    ...(options.noPivot ? { noPivot: true } : {}),
    // prestart and createRuntime run here at the plan's HOOKS_SYNC step; createContainer and startContainer
    // are run by the container's process itself (in its namespaces), with the state read from a file.
    hookSync: Boolean(config.hooks?.prestart?.length || config.hooks?.createRuntime?.length),
  };
  const hookPlans = (fds: { creating: number; created: number }) => ({
    ...(config.hooks?.createContainer?.length
      ? { createContainerHooks: { hooks: config.hooks.createContainer, stateFd: fds.creating } }
      : {}),
    ...(config.hooks?.startContainer?.length
      ? { startContainerHooks: { hooks: config.hooks.startContainer, stateFd: fds.created } }
      : {}),
  });
  const cgroupOptions = {
    id,
    cgroupsPath: linux.cgroupsPath,
    resources: withDefaultDeviceRules(linux.resources, linux.devices),
    layout: cgroupLayout(),
    onWarning: ctx.warn,
  };
  // The cgroup's place and checked resources now; its directories are made while the process starts.
  const cgroupPlan = planCgroup(cgroupOptions, cgroupOptions.layout);
  const cgroupLeaves = cgroupPlan.leaves;
  // Plan once with placeholder fds so a bad config fails before anything exists on the host.
  const placeholders = Object.fromEntries(
    (linux.namespaces ?? []).filter((n) => n.path).map((n) => [n.type, 0]),
  );
  planLaunch({
    ...planInputs,
    ...hookPlans({ creating: 0, created: 0 }),
    joinFds: placeholders,
    warn: () => {},
    debug: () => {},
  });

  const { store, sys } = ctx;
  const dir = store.dir(id);
  // From here `state` reports the container as creating, and other commands on it wait for the create.
  const creating = await store.withRootLock(() => {
    const existing = store.ids();
    if (existing.includes(id)) {
      throw new MagikError("ContainerAlreadyExists", `container ${id} already exists`, { details: { id } });
    }
    enforceLimit("MAX_CONTAINERS", existing.length + 1, ctx.limits);
    return store.beginCreate({
      id,
      bundle: bundle.path,
      rootfs,
      ...(config.annotations && Object.keys(config.annotations).length
        ? { annotations: config.annotations }
        : {}),
      cgroup: { paths: cgroupLeaves, created: [] },
    });
  });

  const opened: number[] = [];
  let cgroup: CgroupHandle | undefined;
  try {
    const joinFds: Partial<Record<NamespaceType, number>> = {};
    for (const ns of linux.namespaces ?? []) {
      if (!ns.path) continue;
      const fd = sys.open(ns.path, O.RDONLY);
      if (fd < 0) {
        throw new MagikError(
          "CreateFailed",
          `cannot open ${ns.type} namespace ${ns.path}: ${errnoName(fd)}`,
          {
            details: { namespace: ns.type, path: ns.path, errno: errnoName(fd), step: "open namespace" },
          },
        );
      }
      opened.push(fd);
      joinFds[ns.type] = fd;
    }
    const fifo = `${dir}/exec.fifo`;
    const mk = sys.mkfifo(fifo, 0o622);
    if (mk < 0)
      throw new MagikError("CreateFailed", `mkfifo ${fifo}: ${errnoName(mk)}`, { details: { path: fifo } });
    // Opened for reading here and inherited: the process never resolves the fifo's path (see OP_FIFO_WAIT).
    const fifoFd = sys.open(fifo, O.RDONLY | O.NONBLOCK);
    if (fifoFd < 0) throw new MagikError("CreateFailed", `open ${fifo}: ${errnoName(fifoFd)}`);
    opened.push(fifoFd);
    const stdioFds: [number, number, number] = [
      openStdio(ctx, options.stdio?.stdin, 0, opened),
      openStdio(ctx, options.stdio?.stdout, 1, opened),
      openStdio(ctx, options.stdio?.stderr, 2, opened),
    ];
    // The state the container's own hooks read on stdin: a file made now (its fd is inherited read-only),
    // filled once the pid is known, and unlinked.
    const hookStateFiles: { status: "creating" | "created"; path: string }[] = [];
    const hookStateFd = (status: "creating" | "created", needed: boolean | undefined): number => {
      if (!needed) return -1;
      const path = `${dir}/hook-state-${status}.json`;
      writeFileSync(path, "", { mode: 0o600 });
      const fd = sys.open(path, O.RDONLY);
      if (fd < 0) throw new MagikError("CreateFailed", `open ${path}: ${errnoName(fd)}`);
      opened.push(fd);
      hookStateFiles.push({ status, path });
      return fd;
    };
    const hookState = (pid: number, status: "creating" | "created"): ContainerState => {
      const state: ContainerState = {
        ociVersion: OCI_RUNTIME_SPEC_VERSION,
        id,
        status,
        pid,
        bundle: bundle.path,
      };
      if (config.annotations && Object.keys(config.annotations).length)
        state.annotations = config.annotations;
      return state;
    };
    const stateFds = {
      creating: hookStateFd("creating", Boolean(config.hooks?.createContainer?.length)),
      created: hookStateFd("created", Boolean(config.hooks?.startContainer?.length)),
    };
    const plan: LaunchPlan = planLaunch({
      ...planInputs,
      ...hookPlans(stateFds),
      joinFds,
      fifoFd,
      stdioFds,
      cgroupBinds: cgroupBinds(cgroupLeaves),
    });
    // createContainer hooks run within the setup: each adds its timeout (or the start timeout) to the deadline.
    const hookBudgetMs = (config.hooks?.createContainer ?? []).reduce(
      (sum, hook) => sum + (hook.timeout ? hook.timeout * 1000 : ctx.limits.CONTAINER_START_TIMEOUT_MS),
      0,
    );
    const setupDeadline = () => Date.now() + ctx.limits.CONTAINER_START_TIMEOUT_MS + hookBudgetMs;
    const deadline = setupDeadline();
    const launched = await launch(sys, {
      ...plan,
      exitDir: dir,
      until: "ready",
      deadline,
      errorCode: "CreateFailed",
      whileStarting: async () => {
        cgroup = await createCgroup(cgroupOptions, syncCgroupFs, cgroupPlan);
      },
      beforeRelease: async (pid) => {
        if (plan.userNs) writeIdMaps(pid, config);
        await cgroup!.join(pid);
        for (const { status, path } of hookStateFiles) {
          writeFileSync(path, JSON.stringify(hookState(pid, status)));
          rmSync(path, { force: true });
        }
      },
      atHooks: async (pid) => {
        // After the mounts, before pivot_root and before the createContainer hooks (runc's procHooks).
        const state = hookState(pid, "creating");
        await runHooks("prestart", config.hooks?.prestart, state);
        await runHooks("createRuntime", config.hooks?.createRuntime, state);
        return setupDeadline();
      },
    });
    const stored: StoredContainer = {
      id,
      bundle: bundle.path,
      rootfs,
      pid: launched.pid,
      reaperPid: launched.reaperPid,
      created: new Date().toISOString(),
      config,
      cgroup: cgroup!.toJSON(),
    };
    const startTime = readProcStat(launched.pid)?.startTime;
    if (startTime !== undefined) stored.pidStartTime = startTime;
    store.write(stored);
    if (options.pidFile) {
      const tmp = `${options.pidFile}.${process.pid}.tmp`;
      writeFileSync(tmp, String(launched.pid));
      renameSync(tmp, options.pidFile);
    }
    const state = store.ociState(stored);
    return { stored, state, notifyFd: launched.notifyFd };
  } catch (err) {
    await cgroup?.destroy().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
    if (options.pidFile) rmSync(options.pidFile, { force: true });
    throw err;
  } finally {
    for (const fd of opened) sys.close(fd);
    creating.release();
  }
}

/** The config with capability names this kernel lacks removed (warned about by processSecurity). */
function withCapabilities(config: RuntimeConfig, capabilities: Capabilities | undefined): RuntimeConfig {
  if (!capabilities || !config.process) return config;
  return { ...config, process: { ...config.process, capabilities } };
}

/** The container's own cgroup directories, named as their hierarchies are under /sys/fs/cgroup. */
function cgroupBinds(paths: Readonly<Record<string, string>>): { name: string; hostPath: string }[] {
  const binds = new Map<string, string>();
  for (const dir of Object.values(paths)) {
    if (!dir.startsWith("/sys/fs/cgroup/")) continue;
    const name = dir.slice("/sys/fs/cgroup/".length).split("/")[0];
    if (name && !binds.has(name)) binds.set(name, dir);
  }
  return [...binds].map(([name, hostPath]) => ({ name, hostPath }));
}

/** Device rules every container gets after its own (runc's AllowedDevices), and one per linux.devices entry. */
const DEFAULT_DEVICE_RULES: DeviceCgroupRule[] = [
  { allow: true, type: "c", major: -1, minor: -1, access: "m" },
  { allow: true, type: "b", major: -1, minor: -1, access: "m" },
  ...[
    [1, 3],
    [1, 5],
    [1, 7],
    [1, 8],
    [1, 9],
    [5, 0],
    [5, 1],
    [5, 2],
    [136, -1],
    [10, 200],
  ].map(([major, minor]) => ({
    allow: true,
    type: "c" as const,
    major: major!,
    minor: minor!,
    access: "rwm",
  })),
];

export function withDefaultDeviceRules(
  resources: Resources | undefined,
  devices: Device[] | undefined,
): Resources | undefined {
  if (!resources?.devices) return resources;
  const own = (devices ?? [])
    .filter((d) => d.type === "c" || d.type === "b")
    .map((d) => ({
      allow: true,
      type: d.type as "c" | "b",
      major: d.major ?? -1,
      minor: d.minor ?? -1,
      access: "rwm",
    }));
  return { ...resources, devices: [...resources.devices, ...DEFAULT_DEVICE_RULES, ...own] };
}

function writeIdMaps(pid: number, config: RuntimeConfig): void {
  const linux = config.linux ?? {};
  const lines = (maps: { containerID: number; hostID: number; size: number }[] | undefined) =>
    (maps ?? []).map((m) => `${m.containerID} ${m.hostID} ${m.size}\n`).join("");
  try {
    writeFileSync(`/proc/${pid}/uid_map`, lines(linux.uidMappings));
    writeFileSync(`/proc/${pid}/gid_map`, lines(linux.gidMappings));
  } catch (err) {
    throw new MagikError("CreateFailed", `cannot write id mappings: ${(err as Error).message}`, {
      cause: err,
      details: { step: "write uid_map/gid_map", errno: (err as { code?: string }).code, pid },
      hint: "Mappings must not overlap and must be allowed for the runtime's user.",
    });
  }
}
