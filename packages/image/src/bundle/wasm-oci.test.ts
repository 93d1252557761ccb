import fs from "node:fs";
import path from "node:path";
import { isMagikError, MediaTypes, RuntimeConfig, sha256Digest, WASM_ANNOTATIONS } from "@magikrun/spec";
import { defaultMounts } from "@magikrun/spec/runc-defaults";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { jsonBlob } from "../test-support/fixture.ts";
import type { ResolvedImage } from "../types.ts";
import { makeTestRoot, storeLayers, type TestRoot } from "../unpack/test-image.ts";
import { BundleBuilder } from "./bundle-builder.ts";

// The config.json of wasm bundles; that wasmBundleFromOci reads it back as bundle.json is tested in
// apps/cli/src/commands/bundle-wasm.test.ts, where both packages meet.

let root: TestRoot;
let builder: BundleBuilder;
let ids: string[];

beforeEach(async () => {
  root = await makeTestRoot("magik-wasm-oci-");
  builder = BundleBuilder.fromStore(root.store);
  ids = [];
});
afterEach(() => {
  try {
    for (const id of ids) builder.remove(id);
  } finally {
    root.cleanup();
  }
});

function uniqueId(name: string): string {
  const id = `${name}-${process.pid}-${ids.length}`;
  ids.push(id);
  return id;
}

const WASM_MODULE = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);

async function wasmArtifact(config: Record<string, unknown>): Promise<ResolvedImage> {
  const configBlob = jsonBlob(MediaTypes.ociConfig, {
    architecture: "wasm",
    os: "wasip1",
    config,
    rootfs: { type: "layers", diff_ids: [] },
  });
  const layer = {
    mediaType: MediaTypes.wasmLayer,
    digest: sha256Digest(WASM_MODULE),
    size: WASM_MODULE.length,
  };
  await root.store.put(WASM_MODULE);
  await root.store.put(configBlob.bytes);
  const manifest = {
    schemaVersion: 2 as const,
    mediaType: MediaTypes.ociManifest,
    config: { mediaType: configBlob.mediaType, digest: configBlob.digest, size: configBlob.size },
    layers: [layer],
  };
  return {
    manifestDigest: sha256Digest(JSON.stringify(manifest)),
    manifest,
    configDigest: configBlob.digest,
    config: JSON.parse(new TextDecoder().decode(configBlob.bytes)),
  };
}

function configOf(dir: string): RuntimeConfig {
  return RuntimeConfig.parse(JSON.parse(fs.readFileSync(path.join(dir, "config.json"), "utf8")));
}

describe("config.json of wasm bundles", () => {
  it("gives a wasm artifact a rootfs holding only its module, unpreopened, with the limits as annotations", async () => {
    const image = await wasmArtifact({
      Env: ["GREETING=hi"],
      // An image cannot set its own limits through labels: bundle.json would not have them.
      Labels: {
        "org.example": "yes",
        [WASM_ANNOTATIONS.fuel]: "1",
        [WASM_ANNOTATIONS.timeoutMs]: "9",
      },
    });
    const data = path.join(root.dir, "data");
    fs.mkdirSync(data);
    const bundle = await builder.buildWasm(image, uniqueId("artifact"), {
      cmd: ["a"],
      preopens: [{ guestPath: "/data", hostPath: data, readonly: true }],
      maxMemoryPages: 16,
    });
    const config = configOf(bundle.path);
    expect(config.process).toMatchObject({ args: ["module.wasm", "a"], env: bundle.env, cwd: "/" });
    expect(config.process?.env).not.toContainEqual(expect.stringMatching(/^HOME=/));
    expect(config.process?.user).toEqual({ uid: 0, gid: 0 });
    expect(config.root).toEqual({ path: "rootfs", readonly: false });
    expect(fs.readdirSync(path.join(bundle.path, "rootfs"))).toEqual(["module.wasm"]);
    // the same file as bundle.json's module, not a second copy
    expect(fs.statSync(path.join(bundle.path, "rootfs/module.wasm")).ino).toBe(
      fs.statSync(bundle.modulePath).ino,
    );
    expect(config.annotations).toEqual({
      "org.example": "yes",
      [WASM_ANNOTATIONS.handler]: "wasm",
      [WASM_ANNOTATIONS.fuel]: "1000000000",
      [WASM_ANNOTATIONS.maxMemoryPages]: "16",
      [WASM_ANNOTATIONS.preopenRootfs]: "false",
    });
    expect(config.mounts).toEqual([
      ...defaultMounts(),
      { destination: "/data", type: "bind", source: data, options: ["rbind", "ro"] },
    ]);
    expect(bundle.preopens).toEqual([{ guestPath: "/data", hostPath: data, readonly: true }]);
  });

  it("places an artifact's module where its command's first argument resolves from the working directory", async () => {
    const image = await wasmArtifact({ Cmd: ["bin/hello.wasm", "--x"], WorkingDir: "/srv" });
    const bundle = await builder.buildWasm(image, uniqueId("placed"));
    const config = configOf(bundle.path);
    expect(config.process).toMatchObject({ args: ["bin/hello.wasm", "--x"], cwd: "/srv" });
    const placed = path.join(bundle.path, "rootfs/srv/bin/hello.wasm");
    expect(new Uint8Array(fs.readFileSync(placed))).toEqual(WASM_MODULE);

    for (const args of [["/"], ["/srv"]]) {
      const id = uniqueId("unplaceable");
      const err = await builder.buildWasm(image, id, { args }).catch((e: unknown) => e);
      expect(isMagikError(err, "BundleBuildFailed") || isMagikError(err, "InvalidInput")).toBe(true);
      expect(fs.existsSync(builder.bundleDir(id))).toBe(false);
    }
  });

  it("points an image's bundle at its rootfs, preopened as / unless a given preopen is /", async () => {
    const image = await storeLayers(
      root.store,
      [[{ type: "file", path: "app/hello.wasm", data: WASM_MODULE }]],
      { config: { Entrypoint: ["hello.wasm"], Cmd: ["--name", "x"], WorkingDir: "/app" } },
    );
    const bundle = await builder.buildWasm(image, uniqueId("image"), {
      fuel: 5000,
      timeoutMs: 250,
      preopens: [{ guestPath: "/tmp", hostPath: path.relative(process.cwd(), root.dir) }],
    });
    const config = configOf(bundle.path);
    expect(config.root).toEqual({ path: bundle.preopens[0]!.hostPath, readonly: false });
    expect(config.process).toMatchObject({ args: ["hello.wasm", "--name", "x"], cwd: "/app" });
    expect(config.annotations).toEqual({
      [WASM_ANNOTATIONS.handler]: "wasm",
      [WASM_ANNOTATIONS.fuel]: "5000",
      [WASM_ANNOTATIONS.timeoutMs]: "250",
    });
    // a relative host path is made absolute in both files
    expect(bundle.preopens[1]).toEqual({ guestPath: "/tmp", hostPath: root.dir });
    expect(config.mounts?.at(-1)).toEqual({
      destination: "/tmp",
      type: "bind",
      source: root.dir,
      options: ["rbind", "rw"],
    });

    const own = await builder.buildWasm(image, uniqueId("own-root"), {
      preopens: [{ guestPath: "/", hostPath: root.dir, readonly: true }],
    });
    expect(own.preopens).toEqual([{ guestPath: "/", hostPath: root.dir, readonly: true }]);
    const ownConfig = configOf(own.path);
    expect(ownConfig.annotations?.[WASM_ANNOTATIONS.preopenRootfs]).toBeUndefined();
    expect(ownConfig.mounts?.at(-1)).toMatchObject({ destination: "/", source: root.dir });
  });

  it("refuses a timeout that is not a positive integer before building anything", async () => {
    const image = await wasmArtifact({});
    const id = uniqueId("timeout");
    const err = await builder.buildWasm(image, id, { timeoutMs: 1.5 }).catch((e: unknown) => e);
    expect(isMagikError(err, "InvalidInput")).toBe(true);
    expect((err as { details: unknown }).details).toEqual({ timeoutMs: 1.5 });
    expect(fs.existsSync(builder.bundleDir(id))).toBe(false);
  });
});
