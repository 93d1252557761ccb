import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { isMagikError } from "./errors.ts";
import { parseJsonWith, parseWith } from "./parse.ts";
import { Process, Resources, RuntimeConfig } from "./runtime-config.ts";

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
      // Copies: tests push to these lists, and a shared array would carry one test's change into the next.
      capabilities: {
        bounding: [...CAPS],
        effective: [...CAPS],
        permitted: [...CAPS],
        inheritable: [],
        ambient: [...CAPS],
      },
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

/** The message parseWith gives for `config` (what `magikrun create` prints), or "ok". */
function verdict(mutate: (config: Config) => void): string {
  const config = fullConfig();
  mutate(config);
  try {
    parseWith(RuntimeConfig, config, "config.json", "InvalidBundle");
    return "ok";
  } catch (err) {
    if (!isMagikError(err, "InvalidBundle")) throw err;
    return err.message;
  }
}

type Mutation = (c: Config) => void;
const user =
  (uid: unknown): Mutation =>
  (c) =>
    Object.assign(c.process.user, { uid });
const rlimitSoft =
  (soft: unknown): Mutation =>
  (c) =>
    Object.assign(c.process.rlimits[0]!, { soft });
const ruleMajor =
  (major: unknown): Mutation =>
  (c) =>
    Object.assign(c.linux.resources.devices[1]!, { major });

// Written with zod/mini, which shares classic zod's checks but none of its methods: these pin what each
// `.check(...)` stands for, and that messages stay English (mini installs no locale by itself).
describe("RuntimeConfig checks, paths and messages", () => {
  it.each<[string, Mutation, string]>([
    // u32: an integer within 0..2^32-1
    ["uid 2^32-1", user(2 ** 32 - 1), "ok"],
    ["uid 1.5", user(1.5), "at process.user.uid: Invalid input: expected int, received number"],
    ["uid 2^32", user(2 ** 32), "at process.user.uid: Too big: expected number to be <=4294967295"],
    ["uid -1", user(-1), "at process.user.uid: Too small: expected number to be >=0"],
    ["uid '0'", user("0"), "at process.user.uid: Invalid input: expected number, received string"],
    ["uid NaN", user(Number.NaN), "at process.user.uid: Invalid input: expected number, received NaN"],
    // u64: non-negative integers, with no safe-integer limit (RLIM_INFINITY arrives as 2^64)
    ["rlimit soft 2^64", rlimitSoft(2 ** 64), "ok"],
    ["rlimit soft 1.5", rlimitSoft(1.5), "at process.rlimits.0.soft: must be a non-negative integer"],
    ["rlimit soft -1", rlimitSoft(-1), "at process.rlimits.0.soft: Too small: expected number to be >=0"],
    // i64: any integer, negative or past 2^53
    ["memory.swap -1", (c) => Object.assign(c.linux.resources.memory, { swap: -1 }), "ok"],
    ["memory.limit 2^63", (c) => Object.assign(c.linux.resources.memory, { limit: 2 ** 63 }), "ok"],
    [
      "memory.limit 1.5",
      (c) => Object.assign(c.linux.resources.memory, { limit: 1.5 }),
      "at linux.resources.memory.limit: must be an integer",
    ],
    // device cgroup rules: major/minor may be null (a wildcard) or absent, but must be integers when set
    ["rule major null", ruleMajor(null), "ok"],
    ["rule major absent", ruleMajor(undefined), "ok"],
    ["rule major 1.5", ruleMajor(1.5), "at linux.resources.devices.1.major: must be an integer"],
    [
      "rule major '1'",
      ruleMajor("1"),
      "at linux.resources.devices.1.major: Invalid input: expected number, received string",
    ],
    [
      "device major null",
      (c) => Object.assign(c.linux.devices[0]!, { major: null }),
      "at linux.devices.0.major: Invalid input: expected number, received null",
    ],
    // ranges, at both ends
    ["oomScoreAdj -1000", (c) => Object.assign(c.process, { oomScoreAdj: -1000 }), "ok"],
    ["oomScoreAdj 1000", (c) => Object.assign(c.process, { oomScoreAdj: 1000 }), "ok"],
    [
      "oomScoreAdj -1001",
      (c) => Object.assign(c.process, { oomScoreAdj: -1001 }),
      "at process.oomScoreAdj: Too small: expected number to be >=-1000",
    ],
    [
      "oomScoreAdj 2^53 (past the safe integers)",
      (c) => Object.assign(c.process, { oomScoreAdj: 2 ** 53 }),
      "at process.oomScoreAdj: Too big: expected int to be <=9007199254740991",
    ],
    ["blkio weight 10", (c) => Object.assign(c.linux.resources.blockIO, { weight: 10 }), "ok"],
    ["blkio weight 1000", (c) => Object.assign(c.linux.resources.blockIO, { weight: 1000 }), "ok"],
    [
      "blkio weight 1001",
      (c) => Object.assign(c.linux.resources.blockIO, { weight: 1001 }),
      "at linux.resources.blockIO.weight: Too big: expected number to be <=1000",
    ],
    [
      "blkio weight 10.5",
      (c) => Object.assign(c.linux.resources.blockIO, { weight: 10.5 }),
      "at linux.resources.blockIO.weight: Invalid input: expected int, received number",
    ],
    ["hook timeout 1", (c) => Object.assign(c.hooks.createRuntime[0]!, { timeout: 1 }), "ok"],
    [
      "hook timeout 0",
      (c) => Object.assign(c.hooks.createRuntime[0]!, { timeout: 0 }),
      "at hooks.createRuntime.0.timeout: Too small: expected number to be >0",
    ],
    ["seccomp arg index 5", (c) => Object.assign(c.linux.seccomp.syscalls[1]!.args![0]!, { index: 5 }), "ok"],
    [
      "seccomp arg index -1",
      (c) => Object.assign(c.linux.seccomp.syscalls[1]!.args![0]!, { index: -1 }),
      "at linux.seccomp.syscalls.1.args.0.index: Too small: expected number to be >=0",
    ],
    // lengths
    [
      "empty args",
      (c) => Object.assign(c.process, { args: [] }),
      "at process.args: process.args needs at least the program",
    ],
    ["no args", (c) => Object.assign(c.process, { args: undefined }), "ok"],
    [
      "empty root path",
      (c) => Object.assign(c.root, { path: "" }),
      "at root.path: Too small: expected string to have >=1 characters",
    ],
    [
      "seccomp rule without names",
      (c) => Object.assign(c.linux.seccomp.syscalls[0]!, { names: [] }),
      "at linux.seccomp.syscalls.0.names: Too small: expected array to have >=1 items",
    ],
    // patterns, prefixes, options
    ["ociVersion 1.10.3+x", (c) => Object.assign(c, { ociVersion: "1.10.3-x+y" }), "ok"],
    [
      "ociVersion 1.0",
      (c) => Object.assign(c, { ociVersion: "1.0" }),
      "at ociVersion: ociVersion must be 1.x.y",
    ],
    [
      "ociVersion 1.0.0 with a suffix and no dash",
      (c) => Object.assign(c, { ociVersion: "1.0.0rc" }),
      "at ociVersion: ociVersion must be 1.x.y",
    ],
    [
      "a capability without CAP_",
      (c) => c.process.capabilities.ambient.push("NET_ADMIN"),
      "at process.capabilities.ambient.3: capability names look like CAP_XXX",
    ],
    [
      "an rlimit without RLIMIT_",
      (c) => Object.assign(c.process.rlimits[0]!, { type: "NOFILE" }),
      "at process.rlimits.0.type: Invalid string: must match pattern /^RLIMIT_[A-Z]+$/",
    ],
    ["empty access", (c) => Object.assign(c.linux.resources.devices[0]!, { access: "" }), "ok"],
    [
      "access rwx",
      (c) => Object.assign(c.linux.resources.devices[0]!, { access: "rwx" }),
      "at linux.resources.devices.0.access: Invalid string: must match pattern /^[rwm]*$/",
    ],
    [
      "a lowercase seccomp architecture",
      (c) => c.linux.seccomp.architectures.push("SCMP_ARCH_x86"),
      "at linux.seccomp.architectures.3: Invalid string: must match pattern /^SCMP_ARCH_[A-Z0-9_]+$/",
    ],
    [
      "a relative cwd",
      (c) => Object.assign(c.process, { cwd: "tmp" }),
      "at process.cwd: process.cwd must be absolute",
    ],
    [
      "a relative device path",
      (c) => Object.assign(c.linux.devices[0]!, { path: "dev/fuse" }),
      'at linux.devices.0.path: Invalid string: must start with "/"',
    ],
    [
      "an unknown namespace",
      (c) => c.linux.namespaces.push({ type: "net" }),
      'at linux.namespaces.7.type: Invalid option: expected one of "pid"|"network"|"mount"|"ipc"|"uts"|"user"|"cgroup"|"time"',
    ],
    ["an empty rootfsPropagation", (c) => Object.assign(c.linux, { rootfsPropagation: "" }), "ok"],
    [
      "a non-string annotation",
      (c) => Object.assign(c.annotations, { n: 1 }),
      "at annotations.n: Invalid input: expected string, received number",
    ],
    [
      "a missing ociVersion",
      (c) => Object.assign(c, { ociVersion: undefined }),
      "at ociVersion: Invalid input: expected string, received undefined",
    ],
  ])("%s", (_name, mutate, expected) => {
    expect(verdict(mutate)).toBe(expected === "ok" ? "ok" : `invalid config.json ${expected}`);
  });

  it("names no path for a document that is not an object", () => {
    expect(() => parseJsonWith(RuntimeConfig, "[]", "config.json")).toThrow(
      "invalid config.json: Invalid input: expected object, received array",
    );
  });

  it("lists every issue, in document order", () => {
    const config = fullConfig();
    Object.assign(config.process.user, { uid: -1 });
    Object.assign(config.linux.resources.devices[2]!, { minor: 0.5 });
    let details: unknown;
    try {
      parseWith(RuntimeConfig, config, "config.json");
    } catch (err) {
      details = isMagikError(err) ? err.details : err;
    }
    expect(details).toEqual({
      issues: [
        { path: "process.user.uid", message: "Too small: expected number to be >=0" },
        { path: "linux.resources.devices.2.minor", message: "must be an integer" },
      ],
    });
  });

  it("keeps null device numbers as null and unknown keys of nested objects, arrays and records", () => {
    const config = fullConfig() as Config & Record<string, unknown>;
    Object.assign(config.linux.resources.devices[2]!, { future: 1 });
    Object.assign(config.linux.seccomp.syscalls[1]!.args![0]!, { future: 2 });
    Object.assign(config.mounts[7]!.uidMappings![0]!, { future: 3 });
    Object.assign(config.linux.timeOffsets.monotonic, { future: 4 });
    Object.assign(config.hooks.createRuntime[0]!, { future: 5 });
    Object.assign(config.linux, { personality: { domain: "LINUX", future: 6 }, intelRdt: { closID: "x" } });
    const parsed = RuntimeConfig.parse(config);
    expect(parsed.linux?.resources?.devices?.[2]).toEqual({
      allow: true,
      type: "c",
      major: 136,
      minor: null,
      access: "rw",
      future: 1,
    });
    expect(parsed.linux?.seccomp?.syscalls?.[1]?.args?.[0]).toMatchObject({ future: 2 });
    expect(parsed.mounts?.[7]?.uidMappings?.[0]).toMatchObject({ future: 3 });
    expect(parsed.linux?.timeOffsets?.monotonic).toMatchObject({ future: 4 });
    expect(parsed.hooks?.createRuntime?.[0]).toMatchObject({ future: 5 });
    expect(parsed.linux?.personality).toMatchObject({ future: 6 });
    expect(parsed.linux?.intelRdt).toEqual({ closID: "x" });
    expect(parsed).toEqual(config);
  });

  it("validates the parts that exec --process and update --resources read on their own", () => {
    expect(() =>
      parseJsonWith(Process, '{"user":{"uid":0,"gid":0},"cwd":"x"}', "process file p.json"),
    ).toThrow("invalid process file p.json at cwd: process.cwd must be absolute");
    expect(parseJsonWith(Resources, '{"pids":{"limit":-1}}', "resources file r.json")).toEqual({
      pids: { limit: -1 },
    });
    expect(() => parseJsonWith(Resources, '{"cpu":{"shares":-2}}', "resources file r.json")).toThrow(
      "invalid resources file r.json at cpu.shares: Too small: expected number to be >=0",
    );
  });

  it("keeps classic zod off the config.json path (it is mini, core and the English locale only)", () => {
    for (const file of ["runtime-config.ts", "parse.ts", "zod-english.ts"]) {
      const source = readFileSync(new URL(file, import.meta.url), "utf8");
      const zodImports = [...source.matchAll(/from "(zod[^"]*)"/g)].map((m) => m[1]);
      expect(zodImports.every((s) => ["zod/mini", "zod/v4/core", "zod/v4/locales/en.js"].includes(s!))).toBe(
        true,
      );
    }
  });
});
