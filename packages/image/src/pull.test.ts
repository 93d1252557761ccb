import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isMagikError, type MagikErrorCode, MediaTypes } from "@magikrun/spec";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ImageStore } from "./image-store.ts";
import { type PullProgress, pullImage } from "./pull.ts";
import { RegistryClient } from "./registry/client.ts";
import {
  buildBusyboxImage,
  buildLayeredBusyboxImage,
  buildMultiPlatformBusybox,
  type FixtureImage,
  type FixtureIndex,
  hasBusybox,
  hasRegistry,
  pushFixture,
  startRegistry,
  type TestRegistry,
} from "./test-support/index.ts";

const available = hasBusybox() && hasRegistry();
const reason = "needs busybox-static and docker-registry, which scripts/setup.sh installs";

async function codeOf(promise: Promise<unknown>): Promise<MagikErrorCode | string> {
  try {
    await promise;
  } catch (err) {
    return isMagikError(err) ? err.code : String(err);
  }
  return "resolved";
}

describe.skipIf(!available)(`pull from docker-registry (${reason})`, () => {
  const work = mkdtempSync(join(tmpdir(), "magikrun-pull-test-"));
  let open: TestRegistry;
  let basic: TestRegistry;
  let token: TestRegistry;
  const fixtures: Record<string, FixtureImage> = {};
  let multi: FixtureIndex;
  let dockerList: FixtureIndex;
  let storeCount = 0;
  const newStore = () => ImageStore.open(join(work, `store-${storeCount++}`));

  beforeAll(async () => {
    // One scratch dir: the busybox rootfs is made once and reused by every fixture.
    const fx = (_variant: string) => join(work, "fixtures");
    fixtures.gzip = buildBusyboxImage({ workDir: fx("gzip") });
    fixtures.none = buildBusyboxImage({ workDir: fx("none"), compression: "none" });
    fixtures.zstd = buildBusyboxImage({ workDir: fx("zstd"), compression: "zstd" });
    fixtures.docker = buildBusyboxImage({ workDir: fx("docker"), format: "docker" });
    fixtures.layered = buildLayeredBusyboxImage({ workDir: fx("layered") });
    multi = buildMultiPlatformBusybox({ workDir: fx("multi") });
    dockerList = buildMultiPlatformBusybox({ workDir: fx("docker-list"), format: "docker" });
    [open, basic, token] = await Promise.all([
      startRegistry(),
      startRegistry({ auth: "basic" }),
      startRegistry({ auth: "token", tokenExpiresInSeconds: 6 }),
    ]);
    for (const [tag, image] of Object.entries(fixtures)) await pushFixture(open, "test/busybox", tag, image);
    await pushFixture(open, "test/multi", "latest", multi);
    await pushFixture(open, "test/multi", "docker", dockerList);
    await pushFixture(basic, "private/busybox", "1", fixtures.gzip!);
    await pushFixture(token, "private/busybox", "1", fixtures.gzip!);
  });

  afterAll(async () => {
    await Promise.all([open?.stop(), basic?.stop(), token?.stop()]);
    rmSync(work, { recursive: true, force: true });
  });

  it.each(["gzip", "none", "zstd", "docker", "layered"])(
    "pulls the %s image and verifies every blob",
    async (tag) => {
      const store = await newStore();
      const fixture = fixtures[tag]!;
      const events: PullProgress[] = [];
      const { image, record, downloaded } = await pullImage(`${open.host}/test/busybox:${tag}`, {
        store,
        dockerConfig: false,
        onProgress: (e) => events.push(e),
      });
      expect(image.manifestDigest).toBe(fixture.manifest.digest);
      expect(image.configDigest).toBe(fixture.config.digest);
      expect(image.config.rootfs.diff_ids).toEqual(fixture.layers.map((l) => l.diffId));
      expect(image.config.config?.Cmd).toEqual(["/bin/sh"]);
      expect(record.mediaType).toBe(tag === "docker" ? MediaTypes.dockerManifest : MediaTypes.ociManifest);
      expect(downloaded.sort()).toEqual(fixture.layers.map((l) => l.digest).sort());
      for (const blob of [fixture.manifest, fixture.config, ...fixture.layers]) {
        expect(await store.blobs.verify(blob.digest)).toBe(true);
      }
      const done = events.filter((e) => e.type === "layer" && e.status === "done");
      expect(done.length).toBe(fixture.layers.length);
      expect(events.at(-1)?.type).toBe("stored");
      // The index resolves the reference (and its familiar form) back to the same image.
      const resolved = await store.resolve(`${open.host}/test/busybox:${tag}`);
      expect(resolved.manifestDigest).toBe(fixture.manifest.digest);
      expect(resolved.manifest.layers.length).toBe(fixture.layers.length);

      // A second pull stores nothing new.
      const again = await pullImage(`${open.host}/test/busybox:${tag}`, { store, dockerConfig: false });
      expect(again.downloaded).toEqual([]);
    },
  );

  it("pins by digest and refuses a digest the registry does not have", async () => {
    const store = await newStore();
    const digest = fixtures.gzip!.manifest.digest;
    const pinned = await pullImage(`${open.host}/test/busybox@${digest}`, { store, dockerConfig: false });
    expect(pinned.record.reference).toBe(`${open.host}/test/busybox@${digest}`);
    expect((await store.resolve(`${open.host}/test/busybox@${digest}`)).manifestDigest).toBe(digest);
    const missing = `sha256:${"0".repeat(64)}`;
    expect(
      await codeOf(pullImage(`${open.host}/test/busybox@${missing}`, { store, dockerConfig: false })),
    ).toBe("ImageNotFound");
    expect(await codeOf(pullImage(`${open.host}/test/busybox:nope`, { store, dockerConfig: false }))).toBe(
      "ImageNotFound",
    );
  });

  it("selects a platform from an index", async () => {
    const store = await newStore();
    const ref = `${open.host}/test/multi:latest`;
    const arm64 = await pullImage(ref, { store, dockerConfig: false, platform: "linux/arm64" });
    expect(arm64.image.config.architecture).toBe("arm64");
    expect(arm64.record.indexDigest).toBe(multi.index.digest);
    expect(arm64.record.platform).toBe("linux/arm64/v8");
    const arm = await pullImage(ref, {
      store,
      dockerConfig: false,
      platform: { os: "linux", architecture: "arm", variant: "v7" },
    });
    expect(arm.image.config.variant).toBe("v7");
    // Layers are shared between platforms: nothing new to download.
    expect(arm.downloaded).toEqual([]);
    const err = await pullImage(ref, { store, dockerConfig: false, platform: "linux/s390x" }).catch((e) => e);
    expect(isMagikError(err, "ImageNotFound")).toBe(true);
    expect(err.details.available).toEqual(["linux/arm/v7", "linux/arm64/v8", "linux/amd64"]);
    // A Docker manifest list works the same way.
    const fromList = await pullImage(`${open.host}/test/multi:docker`, {
      store,
      dockerConfig: false,
      platform: "linux/arm64",
    });
    expect(fromList.record).toMatchObject({
      indexDigest: dockerList.index.digest,
      mediaType: MediaTypes.dockerManifest,
    });
    // By index digest too.
    const byIndex = await pullImage(`${open.host}/test/multi@${multi.index.digest}`, {
      store,
      dockerConfig: false,
      platform: "linux/amd64",
    });
    expect(byIndex.image.config.architecture).toBe("amd64");
  });

  it("uses Basic credentials from options or the docker config, and refuses wrong ones", async () => {
    const ref = `${basic.host}/private/busybox:1`;
    const good = { username: basic.username, password: basic.password };
    expect((await pullImage(ref, { store: await newStore(), credentials: good })).record.manifestDigest).toBe(
      fixtures.gzip!.manifest.digest,
    );
    const configPath = join(work, "docker-config.json");
    const auth = Buffer.from(`${basic.username}:${basic.password}`).toString("base64");
    writeFileSync(configPath, JSON.stringify({ auths: { [basic.host]: { auth } } }));
    expect(
      (await pullImage(ref, { store: await newStore(), dockerConfig: configPath })).downloaded.length,
    ).toBe(1);
    const wrong = { username: basic.username, password: "wrong" };
    const store = await newStore();
    expect(await codeOf(pullImage(ref, { store, credentials: wrong }))).toBe("Unauthorized");
    expect(await codeOf(pullImage(ref, { store, dockerConfig: false }))).toBe("Unauthorized");
    expect(store.list()).toEqual([]);
    expect(await store.blobs.list()).toEqual([]);
  });

  it("gets Bearer tokens for the right scope, caches and refreshes them", async () => {
    const ref = `${token.host}/private/busybox:1`;
    const creds = { username: token.username, password: token.password };
    const before = token.tokenServer!.requests.length;
    const pulled = await pullImage(ref, { store: await newStore(), credentials: creds });
    expect(pulled.record.manifestDigest).toBe(fixtures.gzip!.manifest.digest);
    const requests = token.tokenServer!.requests.slice(before);
    // One token for the whole pull: manifest, config and layer requests reuse it.
    expect(requests).toEqual([{ scope: ["repository:private/busybox:pull"], user: token.username }]);

    expect(
      await codeOf(pullImage(ref, { store: await newStore(), credentials: { ...creds, password: "x" } })),
    ).toBe("Unauthorized");
    // Anonymous: the token server hands out a token without access; the registry still refuses.
    expect(await codeOf(pullImage(ref, { store: await newStore(), dockerConfig: false }))).toBe(
      "Unauthorized",
    );

    // Tokens live 6 s here, refreshed 5 s early: after a second and a half a new one is fetched.
    const client = new RegistryClient({ domain: token.host, credentials: creds });
    await client.getManifest("private/busybox", "1", 1 << 20);
    await client.getManifest("private/busybox", "1", 1 << 20);
    expect(client.auth.tokenRequests).toBe(1);
    await Bun.sleep(1_500);
    await client.getManifest("private/busybox", "1", 1 << 20);
    expect(client.auth.tokenRequests).toBe(2);
  });

  it("refuses bad references before any network traffic", async () => {
    const store = await newStore();
    expect(await codeOf(pullImage("Busybox", { store }))).toBe("InvalidImageReference");
    expect(await codeOf(pullImage(`${open.host}/x:${"t".repeat(200)}`, { store }))).toBe(
      "InvalidImageReference",
    );
    expect(await codeOf(pullImage(`${open.host}/test/busybox:gzip`, { store, platform: "linux" }))).toBe(
      "InvalidInput",
    );
  });
});
