import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hasBusybox, makeBusyboxRootfs } from "@magikrun/image/test-support";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliResult, runCli } from "../test-support.ts";
import { parseSize } from "./bundle.ts";

describe.skipIf(!hasBusybox())("magikrun bundle (needs busybox-static)", () => {
  let work: string;
  let store: string;

  const cli = (...args: string[]): Promise<CliResult> => runCli(["--store", store, "--json", ...args]);

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), "magikrun-bundle-cli-"));
    store = join(work, "store");
    const rootfs = join(work, "rootfs");
    makeBusyboxRootfs(rootfs);
    const built = await cli("image", "build-from-dir", rootfs, "--reference", "local/bb:1", "--cmd", "sh");
    expect(built.code, built.stderr).toBe(0);
  });

  afterAll(async () => {
    await cli("bundle", "rm", "c1", "c2");
    rmSync(work, { recursive: true, force: true });
  });

  it("builds an OCI bundle whose config runs the given command in the image's rootfs", async () => {
    const res = await cli(
      "bundle",
      "create",
      "local/bb:1",
      "c1",
      "--env",
      "GREETING=hi",
      "--",
      "echo",
      "hello",
    );
    expect(res.code, res.stderr).toBe(0);
    const out = JSON.parse(res.stdout) as { path: string; kind: string };
    expect(out.kind).toBe("oci");
    const config = JSON.parse(readFileSync(join(out.path, "config.json"), "utf8"));
    expect(config.process.args).toEqual(["echo", "hello"]);
    expect(config.process.env).toContain("GREETING=hi");
    expect(existsSync(join(config.root.path, "bin/busybox"))).toBe(true);

    const path = await cli("bundle", "path", "c1");
    expect(JSON.parse(path.stdout).path).toBe(out.path);
  });

  it("writes the resource flags into linux.resources, and refuses bad sizes", async () => {
    const res = await cli(
      "bundle",
      "create",
      "local/bb:1",
      "c5",
      "--memory",
      "32m",
      "--pids-limit",
      "20",
      "--cpus",
      "0.5",
    );
    expect(res.code, res.stderr).toBe(0);
    const config = JSON.parse(readFileSync(join(JSON.parse(res.stdout).path, "config.json"), "utf8"));
    expect(config.linux.resources.memory.limit).toBe(32 * 1024 * 1024);
    expect(config.linux.resources.pids.limit).toBe(20);
    expect(config.linux.resources.cpu).toMatchObject({ quota: 50_000, period: 100_000 });
    await cli("bundle", "rm", "c5");
    const bad = await cli("bundle", "create", "local/bb:1", "c6", "--memory", "12q");
    expect(JSON.parse(bad.stderr).error.code).toBe("InvalidInput");
    expect(existsSync(join(store, "bundles", "c6"))).toBe(false);
  });

  it("refuses a second bundle with the same id and leaves the first intact", async () => {
    const first = await cli("bundle", "create", "local/bb:1", "c2");
    expect(first.code, first.stderr).toBe(0);
    const again = await cli("bundle", "create", "local/bb:1", "c2");
    expect(again.code).toBe(1);
    expect(JSON.parse(again.stderr).error.code).toBe("ContainerAlreadyExists");
    expect(existsSync(join(JSON.parse(first.stdout).path, "config.json"))).toBe(true);
  });

  it("reports an unknown image as ImageNotFound and creates nothing", async () => {
    const res = await cli("bundle", "create", "local/missing:1", "c3");
    expect(res.code).toBe(1);
    expect(JSON.parse(res.stderr).error.code).toBe("ImageNotFound");
    expect(existsSync(join(store, "bundles", "c3"))).toBe(false);
  });

  it("removes the bundle and its rootfs", async () => {
    const created = JSON.parse((await cli("bundle", "create", "local/bb:1", "c4")).stdout) as {
      path: string;
    };
    const rootfs = JSON.parse(readFileSync(join(created.path, "config.json"), "utf8")).root.path as string;
    const rm = await cli("bundle", "rm", "c4");
    expect(rm.code, rm.stderr).toBe(0);
    expect(existsSync(created.path)).toBe(false);
    expect(existsSync(rootfs)).toBe(false);
  });

  it("refuses an invalid container id before touching the store", async () => {
    const res = await cli("bundle", "create", "local/bb:1", "../escape");
    expect(res.code).toBe(1);
    expect(JSON.parse(res.stderr).error.code).toBe("InvalidContainerId");
    expect(existsSync(join(store, "escape"))).toBe(false);
  });
});

describe("parseSize", () => {
  it("reads docker-style sizes", () => {
    expect(parseSize("512", "--memory")).toBe(512);
    expect(parseSize("64k", "--memory")).toBe(65536);
    expect(parseSize("32M", "--memory")).toBe(32 * 1024 ** 2);
    expect(parseSize("2g", "--memory")).toBe(2 * 1024 ** 3);
  });

  it.each(["", "0", "-1m", "1.5g", "12q", "m"])("refuses %j", (value) => {
    expect(() => parseSize(value, "--memory")).toThrow(/--memory/);
  });
});
