import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hasBusybox, makeBusyboxRootfs } from "@magikrun/image/test-support";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

describe.skipIf(!hasBusybox())("magikrun bundle (needs busybox-static)", () => {
  let work: string;
  let store: string;

  async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    const proc = Bun.spawn(["bun", MAIN, "--store", store, "--json", ...args], {
      stdout: "pipe",
      stderr: "pipe",
    });
    const [stdout, stderr, code] = await Promise.all([
      new Response(proc.stdout).text(),
      new Response(proc.stderr).text(),
      proc.exited,
    ]);
    return { code, stdout, stderr };
  }

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
