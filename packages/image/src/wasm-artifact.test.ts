import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ImageManifest, isMagikError, MediaTypes, sha256Digest } from "@magikrun/spec";
import { afterAll, describe, expect, it } from "vitest";
import { ImageStore } from "./image-store.ts";
import { importImage } from "./import.ts";
import { tarBytes } from "./tar-writer.ts";
import { jsonBlob, makeImage, makeIndex, makeLayer, writeOciLayout } from "./test-support/fixture.ts";
import { makeWasmArtifact } from "./test-support/wasm.ts";
import { isWasmArtifact, wasmArtifactConfig } from "./wasm-artifact.ts";

const MODULE = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
const work = mkdtempSync(join(tmpdir(), "magikrun-wasm-artifact-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const manifestOf = (bytes: Uint8Array) => ImageManifest.parse(JSON.parse(new TextDecoder().decode(bytes)));

describe("wasm artifacts", () => {
  it("are told apart from images by config media type, artifactType, or wasm layers over the empty config", () => {
    const artifact = manifestOf(makeWasmArtifact(MODULE).manifest.bytes);
    expect(isWasmArtifact(artifact)).toBe(true);
    const empty = manifestOf(
      makeWasmArtifact(MODULE, { configMediaType: MediaTypes.ociEmpty, config: {} }).manifest.bytes,
    );
    expect(isWasmArtifact(empty)).toBe(true);
    const typed = manifestOf(
      makeWasmArtifact(MODULE, {
        configMediaType: "application/vnd.example.other+json",
        artifactType: MediaTypes.wasmConfig,
      }).manifest.bytes,
    );
    expect(isWasmArtifact(typed)).toBe(true);
    const image = manifestOf(makeImage([makeLayer(tarBytes([]), "gzip", "oci")]).manifest.bytes);
    expect(isWasmArtifact(image)).toBe(false);
  });

  it("get a synthesized image config: wasm platform, the wasm config's command, no filesystem layers", () => {
    const fixture = makeWasmArtifact(MODULE, {
      config: {
        architecture: "wasm",
        os: "wasip1",
        author: "tests",
        layerDigests: [sha256Digest(MODULE)],
        config: { Entrypoint: ["hello.wasm"], Env: ["A=1"] },
      },
    });
    const config = wasmArtifactConfig(manifestOf(fixture.manifest.bytes), fixture.config.bytes, "r");
    expect(config).toMatchObject({
      architecture: "wasm",
      os: "wasip1",
      author: "tests",
      config: { Entrypoint: ["hello.wasm"], Env: ["A=1"] },
      rootfs: { type: "layers", diff_ids: [] },
    });
    const bare = makeWasmArtifact(MODULE, { configMediaType: MediaTypes.ociEmpty, config: {} });
    expect(wasmArtifactConfig(manifestOf(bare.manifest.bytes), bare.config.bytes, "r")).toEqual({
      architecture: "wasm",
      os: "wasip1",
      config: undefined,
      rootfs: { type: "layers", diff_ids: [] },
    });
  });

  it("refuses an artifact without wasm layers, with other layers, or with a malformed config", () => {
    const fixture = makeWasmArtifact(MODULE);
    const manifest = manifestOf(fixture.manifest.bytes);
    const tar = { mediaType: MediaTypes.ociLayerTarGzip, digest: sha256Digest("x"), size: 1 };
    const cases: [typeof manifest, Uint8Array, unknown][] = [
      [{ ...manifest, layers: [] }, fixture.config.bytes, { layers: [] }],
      [
        { ...manifest, layers: [...manifest.layers, tar] },
        fixture.config.bytes,
        { layers: [MediaTypes.wasmLayer, MediaTypes.ociLayerTarGzip] },
      ],
      [manifest, new TextEncoder().encode('{"os": 7}'), { issues: [{ path: "os" }] }],
    ];
    for (const [m, config, details] of cases) {
      let err: unknown;
      try {
        wasmArtifactConfig(m, config, "example.com/hello:v1");
      } catch (e) {
        err = e;
      }
      expect(isMagikError(err, "ManifestParseFailed")).toBe(true);
      expect((err as { details: unknown }).details).toMatchObject(details as object);
    }
  });

  it("import from an OCI layout, alone or picked from an index when this host has no entry", async () => {
    const artifact = makeWasmArtifact(MODULE);
    const other = makeImage([makeLayer(tarBytes([]), "gzip", "oci")], { os: "freebsd" });
    const layout = join(work, "layout");
    writeOciLayout(layout, [
      { fixture: artifact, refName: "example.com/hello-wasm:v1" },
      { fixture: makeIndex([other, artifact]), refName: "example.com/hello-wasm:multi" },
    ]);
    const store = await ImageStore.open(join(work, "store"));
    const { records } = await importImage(layout, { store });
    expect(records.map((r) => [r.reference, r.manifestDigest, r.platform])).toEqual([
      ["example.com/hello-wasm:v1", artifact.manifest.digest, "wasip1/wasm"],
      ["example.com/hello-wasm:multi", artifact.manifest.digest, "wasip1/wasm"],
    ]);
    for (const blob of [artifact.manifest, artifact.config, ...artifact.layers]) {
      expect(await store.blobs.verify(blob.digest)).toBe(true);
    }
    const resolved = await store.resolve("example.com/hello-wasm:multi");
    expect(resolved.config).toMatchObject({ os: "wasip1", rootfs: { diff_ids: [] } });
    expect(resolved.manifest.layers[0]?.mediaType).toBe(MediaTypes.wasmLayer);
    // An explicit platform is exact: the wasm entry is not taken for it.
    const explicit = await importImage(layout, { store, platform: "linux/amd64" }).catch((e) => e);
    expect(isMagikError(explicit, "ImageNotFound")).toBe(true);
  });

  it("an artifact that cannot be run is refused at import, recording nothing and rolling back its blobs", async () => {
    const config = jsonBlob(MediaTypes.wasmConfig, { architecture: "wasm", os: "wasip1" });
    const layer = makeLayer(tarBytes([{ type: "file", path: "x", data: "x" }]), "gzip", "oci");
    const manifest = jsonBlob(MediaTypes.ociManifest, {
      schemaVersion: 2,
      mediaType: MediaTypes.ociManifest,
      config: { mediaType: config.mediaType, digest: config.digest, size: config.size },
      layers: [{ mediaType: layer.mediaType, digest: layer.digest, size: layer.size }],
    });
    const layout = join(work, "bad-layout");
    writeOciLayout(layout, [
      { fixture: { kind: "image", manifest, config, layers: [layer] }, refName: "example.com/bad:v1" },
    ]);
    const store = await ImageStore.open(join(work, "bad-store"));
    const err = await importImage(layout, { store }).catch((e) => e);
    expect(isMagikError(err, "ManifestParseFailed")).toBe(true);
    expect(store.list()).toEqual([]);
    expect(await store.blobs.has(layer.digest)).toBe(false);
  });
});
