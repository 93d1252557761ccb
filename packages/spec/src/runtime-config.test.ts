import { describe, expect, it } from "vitest";
import { isMagikError } from "./errors.ts";
import { parseJsonWith } from "./parse.ts";
import { RuntimeConfig } from "./runtime-config.ts";

const CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];

/** What `runc spec` writes, extended with the sections runc's own tests and Docker/containerd bundles use. */
function fullConfig() {
  return {
    ociVersion: "1.0.2-dev",
    process: {
      terminal: true,
      consoleSize: { height: 24, width: 80 },
      user: { uid: 0, gid: 0, additionalGids: [10, 11], umask: 0o22 },
      args: ["sh"],
      env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
      cwd: "/",
      capabilities: { bounding: CAPS, effective: CAPS, permitted: CAPS, inheritable: [], ambient: CAPS },
      rlimits: [{ type: "RLIMIT_NOFILE", hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
      oomScoreAdj: -500,
      apparmorProfile: "docker-default",
      selinuxLabel: "system_u:system_r:container_t:s0",
    },
    root: { path: "rootfs", readonly: true },
    hostname: "runc",
    domainname: "example.org",
    mounts: [
      { destination: "/proc", type: "proc", source: "proc" },
      {
        destination: "/dev",
        type: "tmpfs",
        source: "tmpfs",
        options: ["nosuid", "strictatime", "mode=755", "size=65536k"],
      },
      {
        destination: "/dev/pts",
        type: "devpts",
        source: "devpts",
        options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
      },
      {
        destination: "/dev/shm",
        type: "tmpfs",
        source: "shm",
        options: ["nosuid", "noexec", "nodev", "mode=1777"],
      },
      {
        destination: "/dev/mqueue",
        type: "mqueue",
        source: "mqueue",
        options: ["nosuid", "noexec", "nodev"],
      },
      { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"] },
      { destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup", options: ["nosuid", "ro"] },
      {
        destination: "/data",
        type: "bind",
        source: "/srv/data",
        options: ["rbind", "idmap"],
        uidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
        gidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
      },
    ],
    hooks: {
      createRuntime: [{ path: "/usr/bin/netns-setup", args: ["netns-setup", "up"], timeout: 5 }],
      poststop: [{ path: "/usr/bin/cleanup", env: ["A=1"] }],
    },
    annotations: { "org.opencontainers.image.title": "demo" },
    linux: {
      uidMappings: [{ containerID: 0, hostID: 1000, size: 1 }],
      gidMappings: [{ containerID: 0, hostID: 1000, size: 1 }],
      sysctl: { "net.ipv4.ip_forward": "1" },
      resources: {
        devices: [
          { allow: false, access: "rwm" },
          { allow: true, type: "c", major: 1, minor: 3, access: "rwm" },
          { allow: true, type: "c", major: 136, minor: null, access: "rw" },
        ],
        memory: { limit: 536870912, reservation: 268435456, swap: -1, disableOOMKiller: false },
        cpu: { shares: 1024, quota: 100000, period: 100000, cpus: "0-1", mems: "0" },
        pids: { limit: 32768 },
        blockIO: { weight: 500, throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 104857600 }] },
        hugepageLimits: [{ pageSize: "2MB", limit: 209715200 }],
        unified: { "memory.high": "400000000" },
      },
      cgroupsPath: "/magikrun/demo",
      namespaces: [
        { type: "pid" },
        { type: "network", path: "/var/run/netns/demo" },
        { type: "ipc" },
        { type: "uts" },
        { type: "mount" },
        { type: "cgroup" },
        { type: "user" },
      ],
      devices: [{ path: "/dev/fuse", type: "c", major: 10, minor: 229, fileMode: 0o666, uid: 0, gid: 0 }],
      seccomp: {
        defaultAction: "SCMP_ACT_ERRNO",
        defaultErrnoRet: 1,
        architectures: ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        syscalls: [
          { names: ["read", "write", "exit_group"], action: "SCMP_ACT_ALLOW" },
          {
            names: ["personality"],
            action: "SCMP_ACT_ALLOW",
            args: [{ index: 0, value: 4294967295, op: "SCMP_CMP_EQ" }],
          },
          { names: ["clone"], action: "SCMP_ACT_ERRNO", errnoRet: 38 },
        ],
      },
      rootfsPropagation: "private",
      maskedPaths: ["/proc/acpi", "/proc/kcore", "/sys/firmware"],
      readonlyPaths: ["/proc/bus", "/proc/sys", "/proc/sysrq-trigger"],
      mountLabel: "system_u:object_r:container_file_t:s0",
      timeOffsets: { monotonic: { secs: 3600, nanosecs: 0 } },
    },
  };
}

type Config = ReturnType<typeof fullConfig>;

function refused(mutate: (config: Config) => void): boolean {
  const config = fullConfig();
  mutate(config);
  return !RuntimeConfig.safeParse(config).success;
}

describe("RuntimeConfig", () => {
  it("parses a full runc-spec-like config.json", () => {
    const config = RuntimeConfig.parse(fullConfig());
    expect(config.process?.args).toEqual(["sh"]);
    expect(config.linux?.namespaces?.map((n) => n.type)).toContain("user");
    expect(config.linux?.seccomp?.syscalls).toHaveLength(3);
    expect(config.mounts).toHaveLength(8);
  });

  it("parses a minimal config and accepts every 1.x version form", () => {
    for (const ociVersion of ["1.0.0", "1.0.2-dev", "1.2.0", "1.1.0-rc.1"]) {
      expect(RuntimeConfig.safeParse({ ociVersion }).success).toBe(true);
    }
  });

  it("keeps fields it does not know, at every level", () => {
    const config = fullConfig() as Config & Record<string, unknown>;
    config.vm = { hypervisor: { path: "/usr/bin/qemu" } };
    (config.process as Record<string, unknown>)["x-magikrun"] = 1;
    (config.linux.resources as Record<string, unknown>).futureController = { a: true };
    const parsed = RuntimeConfig.parse(config) as Record<string, unknown>;
    expect(parsed.vm).toEqual({ hypervisor: { path: "/usr/bin/qemu" } });
    expect((parsed.process as Record<string, unknown>)["x-magikrun"]).toBe(1);
    expect(JSON.stringify(parsed)).toContain("futureController");
  });

  it.each([
    ["a 2.x ociVersion", (c: Config) => Object.assign(c, { ociVersion: "2.0.0" })],
    ["a missing ociVersion", (c: Config) => Object.assign(c, { ociVersion: undefined })],
    ["a string uid", (c: Config) => Object.assign(c.process.user, { uid: "0" })],
    ["a negative gid", (c: Config) => Object.assign(c.process.user, { gid: -1 })],
    ["a uid above 2^32-1", (c: Config) => Object.assign(c.process.user, { uid: 2 ** 32 })],
    ["args that are a string", (c: Config) => Object.assign(c.process, { args: "sh" })],
    ["empty args", (c: Config) => Object.assign(c.process, { args: [] })],
    ["a relative cwd", (c: Config) => Object.assign(c.process, { cwd: "tmp" })],
    ["a missing cwd", (c: Config) => Object.assign(c.process, { cwd: undefined })],
    ["a missing user", (c: Config) => Object.assign(c.process, { user: undefined })],
    ["a capability without CAP_", (c: Config) => c.process.capabilities.bounding.push("NET_ADMIN")],
    ["a lowercase capability", (c: Config) => c.process.capabilities.effective.push("cap_net_admin")],
    ["an unknown rlimit form", (c: Config) => c.process.rlimits.push({ type: "NOFILE", hard: 1, soft: 1 })],
    ["an oomScoreAdj out of range", (c: Config) => Object.assign(c.process, { oomScoreAdj: 1001 })],
    ["terminal as a string", (c: Config) => Object.assign(c.process, { terminal: "true" })],
    ["an empty root path", (c: Config) => Object.assign(c.root, { path: "" })],
    ["a mount without destination", (c: Config) => c.mounts.push({ type: "tmpfs" } as never)],
    ["a relative hook path", (c: Config) => c.hooks.poststop.push({ path: "cleanup", env: [] })],
    ["a zero hook timeout", (c: Config) => c.hooks.createRuntime.push({ path: "/x", args: [], timeout: 0 })],
    ["an unknown namespace", (c: Config) => c.linux.namespaces.push({ type: "net" })],
    ["a device with a bad type", (c: Config) => c.linux.devices.push({ ...c.linux.devices[0]!, type: "x" })],
    [
      "a device cgroup rule with bad access",
      (c: Config) => c.linux.resources.devices.push({ allow: true, access: "rwx" }),
    ],
    ["a blkio weight out of range", (c: Config) => Object.assign(c.linux.resources.blockIO, { weight: 5 })],
    [
      "an unknown seccomp action",
      (c: Config) => Object.assign(c.linux.seccomp, { defaultAction: "SCMP_ACT_DENY" }),
    ],
    [
      "a seccomp arg index above 5",
      (c: Config) => Object.assign(c.linux.seccomp.syscalls[1]!.args![0]!, { index: 6 }),
    ],
    [
      "a seccomp rule without names",
      (c: Config) => c.linux.seccomp.syscalls.push({ names: [], action: "SCMP_ACT_ALLOW" }),
    ],
    [
      "an unknown rootfsPropagation",
      (c: Config) => Object.assign(c.linux, { rootfsPropagation: "sideways" }),
    ],
    ["a non-string annotation", (c: Config) => Object.assign(c.annotations, { n: 1 })],
    ["a non-string sysctl", (c: Config) => Object.assign(c.linux.sysctl, { "vm.x": 1 })],
  ])("refuses %s", (_name, mutate) => {
    expect(refused(mutate)).toBe(true);
  });

  it("names the offending field when read through parseJsonWith", () => {
    const config = fullConfig();
    config.process.cwd = "relative/dir";
    let caught: unknown;
    try {
      parseJsonWith(RuntimeConfig, JSON.stringify(config), "config.json", "InvalidBundle");
    } catch (err) {
      caught = err;
    }
    expect(isMagikError(caught, "InvalidBundle")).toBe(true);
    expect((caught as Error).message).toBe(
      "invalid config.json at process.cwd: process.cwd must be absolute",
    );
  });
});
