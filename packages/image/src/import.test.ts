import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isMagikError, type MagikError } from "@magikrun/spec";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ImageStore } from "./image-store.ts";
import { importImage } from "./import.ts";
import {
  buildBusyboxImage,
  buildMultiPlatformBusybox,
  type FixtureImage,
  type FixtureIndex,
  hasBusybox,
  writeOciLayout,
} from "./test-support/index.ts";

function tarOf(dir: string, out: string): string {
  const proc = Bun.spawnSync(["tar", "--sort=name", "-C", dir, "-cf", out, "."], { stderr: "pipe" });
  if (proc.exitCode !== 0) throw new Error(proc.stderr.toString());
  return out;
}

async function errorOf(promise: Promise<unknown>): Promise<MagikError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isMagikError(err)) throw new Error(`expected a MagikError, got ${String(err)}`);
  return err;
}

describe.skipIf(!hasBusybox())("importImage (needs busybox-static)", () => {
  const work = mkdtempSync(join(tmpdir(), "magikrun-import-test-"));
  let gzip: FixtureImage;
  let plain: FixtureImage;
  let multi: FixtureIndex;
  let n = 0;
  const newStore = () => ImageStore.open(join(work, `store-${n++}`));
  async function expectEmpty(store: ImageStore): Promise<void> {
    expect(await store.blobs.list()).toEqual([]);
    expect(store.list()).toEqual([]);
  }

  beforeAll(() => {
    gzip = buildBusyboxImage({ workDir: join(work, "fx-gzip") });
    plain = buildBusyboxImage({ workDir: join(work, "fx-plain"), compression: "none", format: "docker" });
    multi = buildMultiPlatformBusybox({ workDir: join(work, "fx-multi") });
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it("imports an OCI layout directory and its archive, with ref.name annotations or a given name", async () => {
    const layout = join(work, "layout");
    writeOciLayout(layout, [
      { fixture: gzip, refName: "example.io/tools/busybox:1.0" },
      { fixture: multi, refName: "example.io/multi:1" },
    ]);
    const store = await newStore();
    const dir = await importImage(layout, { store, platform: "linux/arm64" });
    expect(dir.format).toBe("oci-layout");
    expect(dir.records.map((r) => r.reference)).toEqual([
      "example.io/tools/busybox:1.0",
      "example.io/multi:1",
    ]);
    expect(dir.records[1]!.platform).toBe("linux/arm64/v8");
    expect(dir.records[1]!.indexDigest).toBe(multi.index.digest);
    const resolved = await store.resolve("example.io/tools/busybox:1.0");
    expect(resolved.manifestDigest).toBe(gzip.manifest.digest);
    for (const l of gzip.layers) expect(await store.blobs.verify(l.digest)).toBe(true);

    const archive = tarOf(layout, join(work, "layout.tar"));
    const store2 = await newStore();
    const fromTar = await importImage(archive, { store: store2, platform: "linux/amd64" });
    expect(fromTar.format).toBe("oci-archive");
    expect((await store2.resolve("example.io/multi:1")).config.architecture).toBe("amd64");

    // A bare tag (as skopeo writes `oci:dir:tag`) takes its repository from --reference.
    const tagged = join(work, "layout-tag");
    writeOciLayout(tagged, [{ fixture: gzip, refName: "v2" }, { fixture: plain }]);
    const store3 = await newStore();
    const named = await importImage(tagged, { store: store3, reference: "local/bb" });
    expect(named.records.map((r) => r.reference)).toEqual(["docker.io/local/bb:v2"]);
  });

  it("imports docker save archives, following symlinked duplicate layers", async () => {
    const dir = join(work, "docker-save");
    const layerId = "a".repeat(64);
    mkdirSync(join(dir, layerId), { recursive: true });
    mkdirSync(join(dir, "b".repeat(64)), { recursive: true });
    writeFileSync(join(dir, layerId, "layer.tar"), plain.layers[0]!.bytes);
    symlinkSync(`../${layerId}/layer.tar`, join(dir, "b".repeat(64), "layer.tar"));
    const configName = `${plain.config.digest.slice(7)}.json`;
    writeFileSync(join(dir, configName), plain.config.bytes);
    writeFileSync(
      join(dir, "manifest.json"),
      JSON.stringify([
        {
          Config: configName,
          RepoTags: ["busybox:saved", "other/name:x"],
          Layers: [`${"b".repeat(64)}/layer.tar`],
        },
      ]),
    );
    const archive = tarOf(dir, join(work, "docker-save.tar"));
    const store = await newStore();
    const result = await importImage(archive, { store });
    expect(result.format).toBe("docker-archive");
    expect(result.records.map((r) => r.reference)).toEqual([
      "docker.io/library/busybox:saved",
      "docker.io/other/name:x",
    ]);
    const gzipped = join(work, "docker-save.tar.gz");
    writeFileSync(gzipped, Bun.gzipSync(await Bun.file(archive).bytes()));
    const fromGzip = await importImage(gzipped, { store: await newStore() });
    expect(fromGzip.records.map((r) => r.manifestDigest)).toEqual(
      result.records.map((r) => r.manifestDigest),
    );
    const bomb = join(work, "bomb.tar.gz");
    writeFileSync(bomb, Bun.gzipSync(new Uint8Array(4 << 20)));
    const bombStore = await newStore();
    expect(
      (await errorOf(importImage(bomb, { store: bombStore, limits: { MAX_ROOTFS_SIZE: 1 << 20 } }))).code,
    ).toBe("ImageTooLarge");
    expect(await bombStore.blobs.list()).toEqual([]);
    const image = await store.resolve("busybox:saved");
    expect(image.manifest.layers[0]!.digest).toBe(plain.layers[0]!.diffId);
    expect(image.configDigest).toBe(plain.config.digest);
  });

  it.skipIf(!Bun.which("skopeo"))(
    "imports what skopeo writes (oci: and docker-archive:; needs skopeo)",
    async () => {
      const layout = join(work, "for-skopeo");
      writeOciLayout(layout, [{ fixture: gzip, refName: "src" }]);
      const archive = join(work, "skopeo-docker.tar");
      const copy = Bun.spawnSync(
        [
          "skopeo",
          "copy",
          "--insecure-policy",
          `oci:${layout}:src`,
          `docker-archive:${archive}:skopeo/busybox:1`,
        ],
        { stderr: "pipe" },
      );
      expect(copy.exitCode, copy.stderr.toString()).toBe(0);
      const store = await newStore();
      const result = await importImage(archive, { store });
      expect(result.records[0]!.reference).toBe("docker.io/skopeo/busybox:1");
      const image = await store.resolve("skopeo/busybox:1");
      expect(image.config.rootfs.diff_ids).toEqual([gzip.layers[0]!.diffId]);
    },
  );

  it("refuses tampered, unnamed, traversing and malformed input and rolls back its blobs", async () => {
    const layout = join(work, "tampered");
    writeOciLayout(layout, [{ fixture: gzip, refName: "x.io/t:1" }]);
    writeFileSync(join(layout, "blobs/sha256", gzip.layers[0]!.digest.slice(7)), "not the layer");
    const store = await newStore();
    expect((await errorOf(importImage(layout, { store }))).code).toBe("DigestMismatch");
    await expectEmpty(store);

    const unnamed = join(work, "unnamed");
    writeOciLayout(unnamed, [{ fixture: gzip }, { fixture: plain }]);
    expect((await errorOf(importImage(unnamed, { store }))).code).toBe("InvalidInput");

    const traversal = join(work, "traversal");
    mkdirSync(traversal);
    writeFileSync(
      join(traversal, "manifest.json"),
      JSON.stringify([{ Config: "../../etc/passwd", RepoTags: ["a:b"], Layers: [] }]),
    );
    expect((await errorOf(importImage(traversal, { store }))).code).toBe("PathTraversal");
    mkdirSync(join(work, "outside"));
    writeFileSync(join(work, "outside", "secret.json"), "{}");
    symlinkSync(join(work, "outside"), join(traversal, "linked"));
    writeFileSync(
      join(traversal, "manifest.json"),
      JSON.stringify([{ Config: "linked/secret.json", RepoTags: ["a:b"], Layers: [] }]),
    );
    expect((await errorOf(importImage(traversal, { store }))).code).toBe("PathTraversal");
    writeFileSync(
      join(traversal, "manifest.json"),
      JSON.stringify([{ Config: "../../etc/passwd", RepoTags: ["a:b"], Layers: [] }]),
    );
    const viaTar = tarOf(traversal, join(work, "traversal.tar"));
    expect((await errorOf(importImage(viaTar, { store }))).code).toBe("PathTraversal");

    const junk = join(work, "junk.tar");
    writeFileSync(junk, "x".repeat(2048));
    expect((await errorOf(importImage(junk, { store }))).code).toBe("InvalidInput");
    expect((await errorOf(importImage(join(work, "nope"), { store }))).code).toBe("InvalidInput");
    const limited = await errorOf(
      importImage(join(work, "layout"), { store, limits: { MAX_CONFIG_SIZE: 10 } }),
    );
    expect(limited.details.limit).toBe("MAX_CONFIG_SIZE");
    await expectEmpty(store);
    expect(readdirSync(join(store.root, "blobs", "tmp"))).toEqual([]);
  });
});
