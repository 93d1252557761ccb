import fs from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isMagikError, MediaTypes, sha256Digest } from "@magikrun/spec";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BundleBuilder } from "./bundle/bundle-builder.ts";
import { ImageStore } from "./image-store.ts";
import { LayerCache } from "./layer-cache.ts";
import { hostPlatform } from "./platform.ts";
import { pullImage } from "./pull.ts";
import { tarBytes } from "./tar-writer.ts";
import {
  hasRegistry,
  jsonBlob,
  makeImage,
  makeIndex,
  makeLayer,
  makeWasmArtifact,
  makeWasmCompatImage,
  pushFixture,
  startRegistry,
  type TestRegistry,
} from "./test-support/index.ts";
import { unmountBelow } from "./unpack/test-image.ts";

/** The smallest valid module: magic and version. buildWasm only copies it; running is the CLI test's part. */
const MODULE = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);

describe.skipIf(!hasRegistry())("wasm images pulled from docker-registry (needs docker-registry)", () => {
  const work = fs.mkdtempSync(join(tmpdir(), "magikrun-wasm-pull-"));
  let registry: TestRegistry;
  let storeCount = 0;
  const newStore = () => ImageStore.open(join(work, `store-${storeCount++}`));
  const artifact = makeWasmArtifact(MODULE);
  const commanded = makeWasmArtifact(MODULE, {
    config: { architecture: "wasm", os: "wasip1", config: { Entrypoint: ["hello.wasm"], Cmd: ["--x"] } },
  });
  const compat = makeWasmCompatImage(MODULE);
  const compatNoSuffix = makeWasmCompatImage(MODULE, { path: "bin/hello" });
  const plainNoSuffix = makeWasmCompatImage(MODULE, { path: "bin/hello", annotate: false });
  const unrunnable = makeWasmArtifact(MODULE);
  {
    // A wasm config over a filesystem layer: nothing here can run it.
    const layer = makeLayer(tarBytes([{ type: "file", path: "x", data: "x" }]), "gzip", "oci");
    const doc = JSON.parse(new TextDecoder().decode(unrunnable.manifest.bytes));
    doc.layers = [{ mediaType: layer.mediaType, digest: layer.digest, size: layer.size }];
    unrunnable.layers = [layer];
    unrunnable.manifest = jsonBlob(MediaTypes.ociManifest, doc);
  }
  const foreign = makeImage([makeLayer(tarBytes([]), "gzip", "oci")], { os: "freebsd" });
  const host = hostPlatform();
  const native = makeImage([makeLayer(tarBytes([{ type: "dir", path: "bin" }]), "gzip", "oci")], {
    os: host.os,
    architecture: host.architecture,
    ...(host.variant ? { variant: host.variant } : {}),
  });

  beforeAll(async () => {
    registry = await startRegistry();
    await pushFixture(registry, "test/hello-wasm", "v1", artifact);
    await pushFixture(registry, "test/hello-wasm", "cmd", commanded);
    await pushFixture(registry, "test/hello-wasm", "multi", makeIndex([foreign, artifact]));
    await pushFixture(registry, "test/hello-wasm", "both", makeIndex([native, artifact]));
    await pushFixture(registry, "test/hello-compat", "v1", compat);
    await pushFixture(registry, "test/hello-compat", "nosuffix", compatNoSuffix);
    await pushFixture(registry, "test/hello-compat", "plain", plainNoSuffix);
    await pushFixture(registry, "test/hello-wasm", "unrunnable", unrunnable);
  });

  afterAll(async () => {
    await registry?.stop();
    unmountBelow(work);
    fs.rmSync(work, { recursive: true, force: true });
  });

  it("pulls a wasm artifact, verifies its blobs and builds a wasm bundle from it without unpacking", async () => {
    const store = await newStore();
    const ref = `${registry.host}/test/hello-wasm:v1`;
    const { image, record, downloaded } = await pullImage(ref, { store, dockerConfig: false });
    expect(record).toMatchObject({
      reference: ref,
      manifestDigest: artifact.manifest.digest,
      configDigest: artifact.config.digest,
      platform: "wasip1/wasm",
    });
    expect(downloaded).toEqual([sha256Digest(MODULE)]);
    for (const blob of [artifact.manifest, artifact.config, ...artifact.layers]) {
      expect(await store.blobs.verify(blob.digest)).toBe(true);
    }
    expect(image.config.rootfs.diff_ids).toEqual([]);
    expect(await store.resolve(ref)).toEqual(image);
    // The layer cache skips the wasm layer: nothing is unpacked as tar.
    expect(await new LayerCache(store.root, store.blobs).unpackImage(image)).toEqual([]);

    const builder = BundleBuilder.fromStore(store.blobs);
    const bundle = await builder.buildWasm(await store.resolve(ref), `wasm-artifact-${process.pid}`);
    const withArgs = await builder.buildWasm(image, `wasm-artifact-args-${process.pid}`, { cmd: ["a", "b"] });
    builder.remove(`wasm-artifact-args-${process.pid}`);
    // A module without a command in its config is its own argv[0]; given arguments follow it.
    expect(withArgs.args).toEqual(["module.wasm", "a", "b"]);
    try {
      expect(new Uint8Array(fs.readFileSync(bundle.modulePath))).toEqual(MODULE);
      expect(bundle).toMatchObject({
        moduleDigest: sha256Digest(MODULE),
        args: ["module.wasm"],
        preopens: [],
      });
    } finally {
      builder.remove(`wasm-artifact-${process.pid}`);
    }
    expect(fs.existsSync(bundle.path)).toBe(false);
  });

  it("takes the command of an artifact's wasm config, and overrides over it", async () => {
    const store = await newStore();
    const { image } = await pullImage(`${registry.host}/test/hello-wasm:cmd`, { store, dockerConfig: false });
    const builder = BundleBuilder.fromStore(store.blobs);
    const a = await builder.buildWasm(image, `wasm-cmd-a-${process.pid}`);
    const b = await builder.buildWasm(image, `wasm-cmd-b-${process.pid}`, { cmd: ["--y"], env: ["B=2"] });
    expect(a.args).toEqual(["hello.wasm", "--x"]);
    expect(b.args).toEqual(["hello.wasm", "--y"]);
    expect(b.env).toContain("B=2");
    builder.remove(`wasm-cmd-a-${process.pid}`);
    builder.remove(`wasm-cmd-b-${process.pid}`);
  });

  it("picks a wasm entry of an index when the host has none, or first when preferred; never for an explicit platform", async () => {
    const store = await newStore();
    const multi = `${registry.host}/test/hello-wasm:multi`;
    const fallback = await pullImage(multi, { store, dockerConfig: false });
    expect(fallback.record).toMatchObject({
      manifestDigest: artifact.manifest.digest,
      platform: "wasip1/wasm",
    });
    const explicit = await pullImage(multi, { store, dockerConfig: false, platform: "linux/amd64" }).catch(
      (e) => e,
    );
    expect(isMagikError(explicit, "ImageNotFound")).toBe(true);
    expect(explicit.details.available).toEqual(["freebsd/amd64", "wasip1/wasm"]);
    const both = `${registry.host}/test/hello-wasm:both`;
    expect((await pullImage(both, { store, dockerConfig: false })).record.manifestDigest).toBe(
      native.manifest.digest,
    );
    const preferred = await pullImage(both, { store, dockerConfig: false, wasmPlatform: "prefer" });
    expect(preferred.record.manifestDigest).toBe(artifact.manifest.digest);
  });

  it("builds a wasm bundle from a pulled image whose entrypoint is a .wasm file (compat variant)", async () => {
    const store = await newStore();
    const ref = `${registry.host}/test/hello-compat:v1`;
    const { image, record } = await pullImage(ref, { store, dockerConfig: false });
    expect(record.platform).toBe("wasi/wasm");
    expect(image.manifest.annotations).toEqual({ "module.wasm.image/variant": "compat" });
    expect(image.manifest.layers[0]?.mediaType).toBe(MediaTypes.ociLayerTarGzip);
    const builder = BundleBuilder.fromStore(store.blobs);
    const id = `wasm-compat-${process.pid}`;
    const bundle = await builder.buildWasm(await store.resolve(ref), id, { args: ["/app/hello.wasm", "a"] });
    try {
      expect(new Uint8Array(fs.readFileSync(bundle.modulePath))).toEqual(MODULE);
      expect(bundle.args).toEqual(["/app/hello.wasm", "a"]);
      expect(bundle.preopens[0]?.guestPath).toBe("/");
      expect(fs.existsSync(join(bundle.preopens[0]!.hostPath, "app/hello.wasm"))).toBe(true);
    } finally {
      builder.remove(id);
    }
    expect(fs.existsSync(builder.rootfs.dirOf(id))).toBe(false);
  });

  it("takes an entrypoint without the .wasm suffix only from an image annotated compat", async () => {
    const store = await newStore();
    const builder = BundleBuilder.fromStore(store.blobs);
    const annotated = await pullImage(`${registry.host}/test/hello-compat:nosuffix`, {
      store,
      dockerConfig: false,
    });
    const id = `wasm-nosuffix-${process.pid}`;
    const bundle = await builder.buildWasm(annotated.image, id);
    builder.remove(id);
    expect(bundle.args).toEqual(["/bin/hello"]);
    expect(bundle.moduleDigest).toBe(sha256Digest(MODULE));
    const plain = await pullImage(`${registry.host}/test/hello-compat:plain`, { store, dockerConfig: false });
    const plainId = `wasm-plain-${process.pid}`;
    const err = await builder.buildWasm(plain.image, plainId).catch((e) => e);
    expect(isMagikError(err, "InvalidBundle")).toBe(true);
    expect(err.details).toMatchObject({ entrypoint: "/bin/hello" });
    expect(fs.existsSync(builder.bundleDir(plainId))).toBe(false);
    expect(fs.existsSync(builder.rootfs.dirOf(plainId))).toBe(false);
  });

  it("refuses a wasm artifact with filesystem layers before downloading or recording anything", async () => {
    const store = await newStore();
    const ref = `${registry.host}/test/hello-wasm:unrunnable`;
    const err = await pullImage(ref, { store, dockerConfig: false }).catch((e) => e);
    expect(isMagikError(err, "ManifestParseFailed")).toBe(true);
    expect(err.details).toEqual({ reference: ref, layers: [MediaTypes.ociLayerTarGzip] });
    expect(store.list()).toEqual([]);
    expect(await store.blobs.list()).toEqual([]);
  });
});
