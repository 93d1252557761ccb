import { rejectedMagikError } from "@magikrun/spec/test-support";
import { describe, expect, it } from "vitest";
import { createCgroup } from "./create.ts";
import { fakeFsFor, hybridLayout, v1Layout, v2Layout } from "./fake-fs.ts";
import { openCgroup } from "./handle.ts";

describe("createCgroup on v1 (fake fs)", () => {
  it("creates the path in every hierarchy, copies cpuset from the parent, applies resources", async () => {
    const layout = v1Layout();
    const fs = fakeFsFor(layout);
    const cg = await createCgroup({ id: "c1", layout, resources: { memory: { limit: 1 << 20 } } }, fs);
    expect(cg.paths.memory).toBe("/cg/memory/magikrun/c1");
    expect(cg.paths.cpu).toBe(cg.paths.cpuacct);
    expect(fs.dirs.has("/cg/pids/magikrun/c1")).toBe(true);
    expect(fs.files.get("/cg/cpuset/magikrun/cpuset.cpus")).toBe("0-1");
    expect(fs.files.get("/cg/cpuset/magikrun/c1/cpuset.mems")).toBe("0");
    expect(fs.written("/cg/memory/magikrun/c1/memory.limit_in_bytes")).toEqual(["1048576"]);
    expect(cg.created).toContain("/cg/memory/magikrun");
  });

  it("joins every hierarchy once and round-trips through JSON", async () => {
    const layout = v1Layout();
    const fs = fakeFsFor(layout);
    const cg = await createCgroup({ id: "c2", cgroupsPath: "/a/b", layout }, fs);
    const again = openCgroup(JSON.parse(JSON.stringify(cg)), fs);
    expect(again.paths).toEqual(cg.paths);
    expect(again.created).toEqual([
      "/cg/cpu,cpuacct/a",
      "/cg/cpuset/a",
      "/cg/memory/a",
      "/cg/pids/a",
      "/cg/freezer/a",
      "/cg/devices/a",
      "/cg/blkio/a",
    ]);
    await again.join(1234);
    expect(fs.writes.filter(([p]) => p.endsWith("/cgroup.procs"))).toHaveLength(7);
    expect(() => openCgroup({ memory: "relative/path" }, fs)).toThrow(/not an absolute path/);
    expect(() => openCgroup({ paths: cg.toJSON().paths, created: ["/etc"] }, fs)).toThrow(/not a parent/);
  });

  it("removes everything it created when a write fails, and reports the kernel's refusal", async () => {
    const layout = v1Layout();
    const fs = fakeFsFor(layout);
    fs.failWrite = (path) => (path.endsWith("pids.max") ? "EINVAL" : undefined);
    const e = await rejectedMagikError(
      createCgroup({ id: "c3", layout, resources: { memory: { limit: 1 << 20 }, pids: { limit: 3 } } }, fs),
    );
    expect(e.code).toBe("InvalidInput");
    expect(e.details).toMatchObject({ field: "linux.resources.pids.limit", value: "3", errno: "EINVAL" });
    expect([...fs.dirs].filter((d) => d.includes("magikrun"))).toEqual([]);
  });

  it("reports a control file the kernel lacks as NotSupported, leaving nothing behind", async () => {
    const layout = v1Layout();
    const fs = fakeFsFor(layout);
    fs.missing.add("memory.memsw.limit_in_bytes");
    const e = await rejectedMagikError(
      createCgroup({ id: "c4", layout, resources: { memory: { limit: 1 << 20, swap: 2 << 20 } } }, fs),
    );
    expect(e.code).toBe("NotSupported");
    expect(e.details.files).toEqual(["memory.memsw.limit_in_bytes"]);
    expect([...fs.dirs].filter((d) => d.includes("magikrun"))).toEqual([]);
  });

  it("does not touch the filesystem when resources are invalid", async () => {
    const layout = v1Layout();
    const fs = fakeFsFor(layout);
    const before = [...fs.dirs];
    await rejectedMagikError(createCgroup({ id: "c5", layout, resources: { cpu: { quota: -5 } } }, fs));
    expect(fs.writes).toEqual([]);
    expect([...fs.dirs]).toEqual(before);
  });

  it("refuses a cgroup that already holds processes, and keeps it", async () => {
    const layout = v1Layout();
    const fs = fakeFsFor(layout);
    for (const root of ["/cg/memory", "/cg/memory/x"]) await fs.mkdir(root);
    fs.files.set("/cg/memory/x/cgroup.procs", "77\n");
    const e = await rejectedMagikError(createCgroup({ id: "c6", cgroupsPath: "/x", layout }, fs));
    expect(e.code).toBe("InvalidState");
    expect(fs.dirs.has("/cg/memory/x")).toBe(true);
    expect(fs.dirs.has("/cg/pids/x")).toBe(false);
  });

  it("passes warnings to the caller and keeps them on the handle", async () => {
    const layout = v1Layout();
    const seen: string[] = [];
    const cg = await createCgroup(
      { id: "c7", layout, resources: { memory: { kernel: 1 } }, onWarning: (m) => seen.push(m) },
      fakeFsFor(layout),
    );
    expect(seen).toHaveLength(1);
    expect(cg.warnings).toEqual(seen);
  });
});

it("with the parents in place makes only the leaves, and claims no parent as its own", async () => {
  const layout = v1Layout();
  const fs = fakeFsFor(layout);
  await createCgroup({ id: "first", layout }, fs);
  const second = await createCgroup({ id: "second", layout }, fs);
  expect(second.created).toEqual([]);
  expect(fs.files.get("/cg/cpuset/magikrun/second/cpuset.cpus")).toBe("0-1");
  await second.destroy();
  expect(fs.dirs.has("/cg/memory/magikrun/first")).toBe(true);
  expect(fs.dirs.has("/cg/memory/magikrun/second")).toBe(false);
});

it("destroy removes child cgroups the container made below its own", async () => {
  const layout = v1Layout();
  const fs = fakeFsFor(layout);
  const cg = await createCgroup({ id: "nest", layout }, fs);
  for (const dir of ["/cg/pids/magikrun/nest/a", "/cg/pids/magikrun/nest/a/b"]) await fs.mkdir(dir);
  await cg.destroy();
  expect(fs.dirs.has("/cg/pids/magikrun/nest")).toBe(false);
  expect(fs.removed.indexOf("/cg/pids/magikrun/nest/a/b")).toBeLessThan(
    fs.removed.indexOf("/cg/pids/magikrun/nest/a"),
  );
});

describe("createCgroup on v2 (fake fs)", () => {
  it("enables the needed controllers down to the parent, never in the leaf", async () => {
    const layout = v2Layout();
    const fs = fakeFsFor(layout);
    const cg = await createCgroup({ id: "c1", layout, resources: { pids: { limit: 10 } } }, fs);
    expect(cg.paths).toEqual({ unified: "/cg/magikrun/c1" });
    expect(fs.written("/cg/cgroup.subtree_control")).toContain("+pids");
    expect(fs.written("/cg/magikrun/cgroup.subtree_control")).toContain("+pids");
    expect(fs.written("/cg/magikrun/c1/cgroup.subtree_control")).toEqual([]);
    expect(fs.written("/cg/magikrun/c1/pids.max")).toEqual(["10"]);
    expect(cg.openDirFd()).toBe(42);
  });

  it("attaches a device program to the leaf for device rules", async () => {
    const layout = v2Layout();
    const fs = fakeFsFor(layout);
    await createCgroup({ id: "dev", layout, resources: { devices: [{ allow: false, access: "rwm" }] } }, fs);
    expect(fs.devicePrograms.get("/cg/magikrun/dev")?.byteLength).toBeGreaterThan(0);
  });

  it("refuses a controller the parent does not delegate", async () => {
    const layout = v2Layout();
    const fs = fakeFsFor(layout);
    fs.files.set("/cg/cgroup.controllers", "memory");
    const e = await rejectedMagikError(
      createCgroup({ id: "c2", layout, resources: { pids: { limit: 10 } } }, fs),
    );
    expect(e.code).toBe("NotSupported");
    expect(e.details.controller).toBe("pids");
  });

  it("freezes through cgroup.freeze and kills through cgroup.kill", async () => {
    const layout = v2Layout();
    const fs = fakeFsFor(layout);
    const cg = await createCgroup({ id: "c3", layout }, fs);
    fs.files.set("/cg/magikrun/c3/cgroup.events", "populated 1\nfrozen 1\n");
    await cg.freeze();
    expect(fs.written("/cg/magikrun/c3/cgroup.freeze")).toEqual(["1"]);
    await cg.killAll("SIGKILL");
    expect(fs.written("/cg/magikrun/c3/cgroup.kill")).toEqual(["1"]);
    await cg.destroy();
    expect(fs.dirs.has("/cg/magikrun/c3")).toBe(false);
    expect(fs.dirs.has("/cg/magikrun")).toBe(false);
  });
});

describe("hybrid hosts (fake fs)", () => {
  it("creates the unified cgroup too; a shared parent is removed by the handle that created it, once empty", async () => {
    const layout = hybridLayout();
    const fs = fakeFsFor(layout);
    const a = await createCgroup({ id: "a", layout }, fs);
    const b = await createCgroup({ id: "b", layout }, fs);
    expect(a.paths.unified).toBe("/cg/unified/magikrun/a");
    await a.destroy();
    expect(fs.dirs.has("/cg/memory/magikrun/a")).toBe(false);
    expect(fs.dirs.has("/cg/memory/magikrun/b")).toBe(true);
    await b.destroy();
    expect(fs.dirs.has("/cg/unified/magikrun/b")).toBe(false);
    // b did not create the parent, so it leaves it; created in reverse order, a would have removed it.
    expect(fs.dirs.has("/cg/memory/magikrun")).toBe(true);
    const c = await createCgroup({ id: "c", cgroupsPath: "/fresh/c", layout }, fs);
    await c.destroy();
    expect([...fs.dirs].filter((d) => d.includes("fresh"))).toEqual([]);
  });

  it("reads v1 stats, treating the v1 'unlimited' number as null", async () => {
    const layout = hybridLayout();
    const fs = fakeFsFor(layout);
    const cg = await createCgroup({ id: "s", layout }, fs);
    fs.files.set("/cg/memory/magikrun/s/memory.usage_in_bytes", "4096\n");
    fs.files.set("/cg/memory/magikrun/s/memory.limit_in_bytes", "9223372036854771712\n");
    fs.files.set("/cg/pids/magikrun/s/pids.current", "3\n");
    fs.files.set("/cg/pids/magikrun/s/pids.max", "max\n");
    fs.files.set("/cg/cpu,cpuacct/magikrun/s/cpuacct.usage", "123\n");
    expect(await cg.stats()).toEqual({
      memory: { usage: 4096, limit: null },
      pids: { current: 3, limit: null },
      cpu: { usageNs: 123 },
    });
  });
});
