import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isMagikError } from "@magikrun/spec";
import { afterAll, describe, expect, it } from "vitest";
import { buildFromDir } from "./build-from-dir.ts";
import { ImageStore } from "./image-store.ts";

describe("ImageStore", () => {
  const work = mkdtempSync(join(tmpdir(), "magikrun-image-store-"));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  function rootfs(name: string, content: string): string {
    const dir = join(work, name);
    mkdirSync(join(dir, "etc"), { recursive: true });
    writeFileSync(join(dir, "etc/hello"), content);
    return dir;
  }

  it("lists, resolves by reference, familiar name and id, tags, removes and prunes", async () => {
    const store = await ImageStore.open(join(work, "store"));
    const a = await buildFromDir(rootfs("a", "a\n"), {
      store,
      reference: "example.io/team/a:1",
      config: { Cmd: ["/a"] },
    });
    const b = await buildFromDir(rootfs("b", "b\n"), { store, reference: "b" });
    expect(store.list().map((r) => r.reference)).toEqual([
      "docker.io/library/b:latest",
      "example.io/team/a:1",
    ]);

    expect((await store.resolve("b")).manifestDigest).toBe(b.record.manifestDigest);
    expect((await store.resolve("docker.io/library/b:latest")).manifestDigest).toBe(b.record.manifestDigest);
    expect((await store.resolve(a.record.manifestDigest.slice(7, 19))).config.config?.Cmd).toEqual(["/a"]);
    expect((await store.resolve(a.record.configDigest)).reference).toBe("example.io/team/a:1");
    expect((await store.resolve(`example.io/team/a@${a.record.manifestDigest}`)).manifestDigest).toBe(
      a.record.manifestDigest,
    );
    const missing = await store.resolve("example.io/team/a:2").catch((e) => e);
    expect(isMagikError(missing, "ImageNotFound")).toBe(true);
    expect(missing.details.reference).toBe("example.io/team/a:2");

    const tagged = await store.tag("example.io/team/a:1", "localhost:5000/a:copy");
    expect(tagged.manifestDigest).toBe(a.record.manifestDigest);
    expect(store.find(a.record.manifestDigest.slice(7, 19)).length).toBe(2);
    const wrongPin = await store.tag("b", `b@${a.record.manifestDigest}`).catch((e) => e);
    expect(isMagikError(wrongPin, "InvalidImageReference")).toBe(true);

    // Removing one of two references keeps the blobs; prune then has nothing of a's to delete.
    await store.remove("example.io/team/a:1");
    let pruned = await store.prune();
    expect(pruned.blobsRemoved).toEqual([]);

    const seen: string[][] = [];
    await store.remove(a.record.manifestDigest.slice(7, 19));
    pruned = await store.prune(async ({ diffIds, images }) => {
      seen.push([...diffIds]);
      expect(images).toEqual([[b.diffId]]);
      return { removed: [a.diffId] };
    });
    expect(pruned.blobsRemoved.sort()).toEqual(
      [a.record.manifestDigest, a.record.configDigest, a.layerDigest].sort(),
    );
    expect(pruned.layersRemoved).toEqual([a.diffId]);
    expect(seen).toEqual([[b.diffId]]);
    expect(store.list().map((r) => r.reference)).toEqual(["docker.io/library/b:latest"]);
    expect(await store.blobs.has(b.layerDigest)).toBe(true);
    expect(isMagikError(await store.remove("example.io/team/a:1").catch((e) => e), "ImageNotFound")).toBe(
      true,
    );
  });

  it("keeps concurrent updates from other writers and refuses a corrupt index", async () => {
    const root = join(work, "concurrent");
    const stores = await Promise.all([ImageStore.open(root), ImageStore.open(root)]);
    const base = {
      manifestDigest: `sha256:${"1".repeat(64)}`,
      configDigest: `sha256:${"2".repeat(64)}`,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      size: 1,
      platform: "linux/amd64",
      created: new Date(0).toISOString(),
    };
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => stores[i % 2]!.record([{ ...base, reference: `x.io/r:${i}` }])),
    );
    expect(stores[0]!.list().length).toBe(20);
    // A lock left by a process that died does not block the next writer.
    const dead = Bun.spawnSync(["true"]).pid;
    writeFileSync(join(root, "images/index.lock"), String(dead));
    await stores[0]!.record([{ ...base, reference: "x.io/r:after-crash" }]);
    expect(stores[1]!.list().length).toBe(21);
    writeFileSync(join(root, "images/index.json"), "{not json");
    expect(() => stores[0]!.list()).toThrow(/corrupt/);
  });
});
