import fs from "node:fs";
import path from "node:path";
import { isMagikError, MediaTypes, RuntimeConfig, sha256Digest } from "@magikrun/spec";
import { DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS, defaultMounts } from "@magikrun/spec/runc-defaults";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { TarEntry } from "../tar-writer.ts";
import { BUSYBOX_PATH, hasBusybox } from "../test-support/busybox.ts";
import { jsonBlob } from "../test-support/fixture.ts";
import type { ResolvedImage } from "../types.ts";
import { makeTestRoot, storeLayers, type TestRoot } from "../unpack/test-image.ts";
import { BundleBuilder } from "./bundle-builder.ts";

const isRoot = process.getuid?.() === 0;
let root: TestRoot;
let builder: BundleBuilder;
let ids: string[];

beforeEach(async () => {
  root = await makeTestRoot("magik-bundle-");
  builder = BundleBuilder.fromStore(root.store, { limits: { MAX_VCPUS: 4 } });
  ids = [];
});
afterEach(() => {
  try {
    for (const id of ids) builder.remove(id);
  } finally {
    root.cleanup(); // also unmounts whatever a failed release left mounted
  }
});

function uniqueId(name: string): string {
  const id = `${name}-${process.pid}-${ids.length}`;
  ids.push(id);
  return id;
}

const etc: TarEntry[] = [
  {
    type: "file",
    path: "etc/passwd",
    data: "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
  },
  {
    type: "file",
    path: "etc/group",
    data: "root:x:0:\napp:x:1000:\nextra:x:2000:app\nwheel:x:10:root,app\n",
  },
  { type: "dir", path: "home/app" },
];

async function imageWith(config: Record<string, unknown>, more: TarEntry[] = []): Promise<ResolvedImage> {
  return storeLayers(root.store, [[...etc, ...more]], { config });
}

describe("OCI bundles", () => {
  it("writes a config.json with runc's defaults, the image's command, env, cwd and labels", async () => {
    const image = await imageWith({
      Entrypoint: ["/bin/app"],
      Cmd: ["--serve"],
      Env: ["PATH=/app/bin:/bin", "MODE=image"],
      WorkingDir: "/srv",
      Labels: { "org.example": "yes" },
    });
    const bundle = await builder.buildOci(image, uniqueId("defaults"), {
      env: { MODE: "override", EXTRA: "1" },
    });
    const onDisk = RuntimeConfig.parse(
      JSON.parse(fs.readFileSync(path.join(bundle.path, "config.json"), "utf8")),
    );
    expect(onDisk).toEqual(bundle.config);
    expect(onDisk.process?.args).toEqual(["/bin/app", "--serve"]);
    expect(onDisk.process?.env).toEqual(["PATH=/app/bin:/bin", "MODE=override", "EXTRA=1", "HOME=/root"]);
    expect(onDisk.process?.cwd).toBe("/srv");
    expect(onDisk.process?.terminal).toBe(false);
    expect(onDisk.process?.user).toEqual({ uid: 0, gid: 0, additionalGids: [10] });
    expect(onDisk.process?.capabilities?.bounding).toEqual([
      "CAP_AUDIT_WRITE",
      "CAP_KILL",
      "CAP_NET_BIND_SERVICE",
    ]);
    expect(onDisk.mounts).toEqual(defaultMounts());
    expect(onDisk.linux?.maskedPaths).toEqual([...DEFAULT_MASKED_PATHS]);
    expect(onDisk.linux?.readonlyPaths).toEqual([...DEFAULT_READONLY_PATHS]);
    expect(onDisk.annotations).toEqual({ "org.example": "yes" });
    expect(onDisk.root?.readonly).toBe(false);
    expect(fs.readFileSync(path.join(onDisk.root!.path, "etc/passwd"), "utf8")).toContain("app:x:1000");
  });

  it("applies overrides: args, entrypoint dropping cmd, user, hostname, resources, read-only root", async () => {
    const image = await imageWith({ Entrypoint: ["/bin/app"], Cmd: ["default"], User: "app" });
    const a = await builder.buildOci(image, uniqueId("args"), { args: ["/bin/sh", "-c", "true"] });
    expect(a.config.process?.args).toEqual(["/bin/sh", "-c", "true"]);
    expect(a.config.process?.user).toEqual({ uid: 1000, gid: 1000, additionalGids: [2000, 10] });
    expect(a.config.process?.env).toContain("HOME=/home/app");
    const b = await builder.buildOci(image, uniqueId("entry"), {
      entrypoint: ["/bin/other"],
      user: "1000:extra",
      hostname: "box",
      readonlyRootfs: true,
      resources: { memory: { limit: 64 * 1024 * 1024 }, pids: { limit: 16 } },
    });
    expect(b.config.process?.args).toEqual(["/bin/other"]);
    expect(b.config.process?.user).toEqual({ uid: 1000, gid: 2000, additionalGids: [10] });
    expect(b.config.hostname).toBe("box");
    expect(b.config.root?.readonly).toBe(true);
    expect(b.config.linux?.resources?.pids).toEqual({ limit: 16 });
    expect(b.config.linux?.resources?.devices).toEqual([{ allow: false, access: "rwm" }]);
    const c = await builder.buildOci(image, uniqueId("numeric"), { user: "4242:4343" });
    expect(c.config.process?.user).toEqual({ uid: 4242, gid: 4343 });
  });

  it("refuses unknown users and leaves no bundle or rootfs behind", async () => {
    const image = await imageWith({ Cmd: ["/bin/sh"] });
    const id = uniqueId("nouser");
    const err = await builder.buildOci(image, id, { user: "nobody-here" }).catch((e: unknown) => e);
    expect(isMagikError(err, "InvalidInput")).toBe(true);
    expect((err as { details: unknown }).details).toEqual({ user: "nobody-here" });
    expect(fs.existsSync(builder.bundleDir(id))).toBe(false);
    expect(fs.existsSync(builder.rootfs.dirOf(id))).toBe(false);
    const group = await builder.buildOci(image, id, { user: "app:nogroup" }).catch((e: unknown) => e);
    expect(isMagikError(group, "InvalidInput")).toBe(true);
  });

  it("reads /etc/passwd inside the rootfs even when it is a symlink to an absolute path", async () => {
    const hostPasswd = path.join(root.dir, "host-passwd");
    fs.writeFileSync(hostPasswd, "hostonly:x:4321:4321::/:/bin/sh\n");
    const image = await storeLayers(root.store, [
      [
        { type: "symlink", path: "etc/passwd", target: hostPasswd },
        { type: "file", path: hostPasswd.slice(1), data: "inimage:x:77:77::/:/bin/sh\n" },
      ],
    ]);
    const bundle = await builder.buildOci(image, uniqueId("symlinked"), { args: ["/x"], user: "inimage" });
    expect(bundle.config.process?.user).toEqual({ uid: 77, gid: 77 });
    const err = await builder
      .buildOci(image, uniqueId("hostuser"), { args: ["/x"], user: "hostonly" })
      .catch((e) => e);
    expect(isMagikError(err, "InvalidInput")).toBe(true);
  });

  it("gives every container its own bundle directory and refuses an existing one", async () => {
    const image = await imageWith({ Cmd: ["/bin/sh"] });
    const id = uniqueId("dup");
    const first = await builder.buildOci(image, id);
    const err = await builder.buildOci(image, id).catch((e: unknown) => e);
    expect(isMagikError(err, "ContainerAlreadyExists")).toBe(true);
    expect(fs.existsSync(path.join(first.path, "config.json"))).toBe(true);
    expect(fs.existsSync(first.config.root!.path)).toBe(true);
    const other = await builder.buildOci(image, uniqueId("other"));
    expect(other.path).not.toBe(first.path);
    expect(other.config.root?.path).not.toBe(first.config.root?.path);
    expect(
      isMagikError(await builder.buildOci(image, "../x").catch((e: unknown) => e), "InvalidContainerId"),
    ).toBe(true);
  });

  // Needs root, /bin/busybox (busybox-static) and runc.
  it.skipIf(!isRoot || !hasBusybox() || !Bun.which("runc"))("builds a bundle runc runs", async () => {
    const image = await storeLayers(root.store, [
      [
        ...etc,
        {
          type: "file",
          path: "bin/busybox",
          mode: 0o755,
          data: new Uint8Array(fs.readFileSync(BUSYBOX_PATH)),
        },
        { type: "symlink", path: "bin/sh", target: "/bin/busybox" },
      ],
    ]);
    const id = uniqueId("runc");
    const bundle = await builder.buildOci(image, id, {
      args: ["/bin/sh", "-c", "echo $(id -u):$(id -g) $(pwd) $HOME"],
      user: "app",
      cwd: "/home/app",
    });
    const run = Bun.spawnSync(["runc", "run", "--bundle", bundle.path, id], {
      stdout: "pipe",
      stderr: "pipe",
    });
    Bun.spawnSync(["runc", "delete", "--force", id]);
    expect(run.stderr.toString()).toBe("");
    expect(run.stdout.toString().trim()).toBe("1000:1000 /home/app /home/app");
  });
});

const WASM_MODULE = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);

async function wasmArtifact(bytes: Uint8Array): Promise<ResolvedImage> {
  const config = jsonBlob(MediaTypes.ociConfig, {
    architecture: "wasm",
    os: "wasip1",
    config: { Env: ["GREETING=hi"] },
    rootfs: { type: "layers", diff_ids: [] },
  });
  const layer = { mediaType: MediaTypes.wasmLayer, digest: sha256Digest(bytes), size: bytes.length };
  await root.store.put(bytes);
  await root.store.put(config.bytes);
  const manifest = {
    schemaVersion: 2 as const,
    mediaType: MediaTypes.ociManifest,
    config: { mediaType: config.mediaType, digest: config.digest, size: config.size },
    layers: [layer],
  };
  const parsedConfig = JSON.parse(new TextDecoder().decode(config.bytes));
  return {
    manifestDigest: sha256Digest(JSON.stringify(manifest)),
    manifest,
    configDigest: config.digest,
    config: parsedConfig,
  };
}

describe("wasm bundles", () => {
  it("takes the module of a wasm artifact, with WASI args, env, preopens and default fuel", async () => {
    const image = await wasmArtifact(WASM_MODULE);
    const bundle = await builder.buildWasm(image, uniqueId("wasm"), {
      env: ["EXTRA=1"],
      preopens: [{ guestPath: "/data", hostPath: root.dir, readonly: true }],
    });
    expect(new Uint8Array(fs.readFileSync(bundle.modulePath))).toEqual(WASM_MODULE);
    expect(bundle.moduleDigest).toBe(sha256Digest(WASM_MODULE));
    expect(bundle.args).toEqual(["module.wasm"]);
    expect(bundle.env).toContain("GREETING=hi");
    expect(bundle.env).toContain("EXTRA=1");
    expect(bundle.preopens).toEqual([{ guestPath: "/data", hostPath: root.dir, readonly: true }]);
    expect(bundle.fuel).toBe(1e9);
  });

  it("refuses a wasm layer that is not a WebAssembly module, leaving nothing", async () => {
    const id = uniqueId("notwasm");
    const err = await builder
      .buildWasm(await wasmArtifact(new TextEncoder().encode("#!/bin/sh")), id)
      .catch((e) => e);
    expect(isMagikError(err, "InvalidBundle")).toBe(true);
    expect(fs.existsSync(builder.bundleDir(id))).toBe(false);
  });

  it("takes a .wasm entrypoint from an ordinary image, preopening its rootfs as /", async () => {
    const image = await storeLayers(
      root.store,
      [[{ type: "file", path: "app/hello.wasm", data: WASM_MODULE }]],
      {
        config: { Entrypoint: ["hello.wasm"], Cmd: ["--name", "x"], WorkingDir: "/app" },
      },
    );
    const bundle = await builder.buildWasm(image, uniqueId("entry"), { fuel: 5000 });
    expect(new Uint8Array(fs.readFileSync(bundle.modulePath))).toEqual(WASM_MODULE);
    expect(bundle.args).toEqual(["hello.wasm", "--name", "x"]);
    expect(bundle.preopens[0]?.guestPath).toBe("/");
    expect(fs.existsSync(path.join(bundle.preopens[0]!.hostPath, "app/hello.wasm"))).toBe(true);
    expect(bundle.fuel).toBe(5000);
    const plain = await imageWith({ Cmd: ["/bin/sh"] });
    expect(
      isMagikError(await builder.buildWasm(plain, uniqueId("plain")).catch((e) => e), "InvalidBundle"),
    ).toBe(true);
  });
});

describe("wasm entrypoints through symlinks", () => {
  it("resolves a symlinked .wasm entrypoint inside the rootfs, never on the host", async () => {
    const hostModule = path.join(root.dir, "host.wasm");
    fs.writeFileSync(hostModule, WASM_MODULE);
    const image = await storeLayers(
      root.store,
      [[{ type: "symlink", path: "app/hello.wasm", target: hostModule }]],
      {
        config: { Entrypoint: ["/app/hello.wasm"] },
      },
    );
    const id = uniqueId("wasm-symlink");
    const err = await builder.buildWasm(image, id).catch((e: unknown) => e);
    expect(isMagikError(err, "InvalidBundle")).toBe(true);
    expect((err as { details: unknown }).details).toMatchObject({ path: "/app/hello.wasm", errno: "ENOENT" });
    expect(fs.existsSync(builder.bundleDir(id))).toBe(false);
  });
});

describe("microVM bundles", () => {
  it("carries the rootfs, command, env and working dir; refuses vcpus over the limit", async () => {
    const image = await imageWith({ Cmd: ["/bin/sh"], WorkingDir: "/home/app" });
    const bundle = await builder.buildMicroVm(image, uniqueId("vm"), { vcpus: 2, memoryMiB: 128 });
    expect(bundle).toMatchObject({
      kind: "microvm",
      args: ["/bin/sh"],
      cwd: "/home/app",
      vcpus: 2,
      memoryMiB: 128,
    });
    expect(fs.existsSync(path.join(bundle.rootfs, "etc/group"))).toBe(true);
    const err = await builder.buildMicroVm(image, uniqueId("vm-big"), { vcpus: 5 }).catch((e: unknown) => e);
    expect(isMagikError(err, "InvalidInput")).toBe(true);
  });
});
