import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MediaTypes } from "@magikrun/spec";
import { rejectedMagikError } from "@magikrun/spec/test-support";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ImageStore } from "./image-store.ts";
import { pullImage } from "./pull.ts";
import {
  buildBusyboxImage,
  buildLayeredBusyboxImage,
  type FaultRegistry,
  type FixtureImage,
  hasBusybox,
  jsonBlob,
  makeImage,
  startFaultRegistry,
  truncatedResponse,
} from "./test-support/index.ts";

describe.skipIf(!hasBusybox())("pull against a faulty registry", () => {
  const work = mkdtempSync(join(tmpdir(), "magikrun-pull-faults-"));
  let image: FixtureImage;
  let layered: FixtureImage;
  let registry: FaultRegistry;
  let n = 0;
  const newStore = () => ImageStore.open(join(work, `store-${n++}`));
  const fast = { dockerConfig: false as const, retryBaseMs: 5 };

  /** The store must hold no blob and no temp file, and no reference, after a failed pull. */
  async function expectEmpty(store: ImageStore): Promise<void> {
    expect(await store.blobs.list()).toEqual([]);
    expect(readdirSync(join(store.root, "blobs", "tmp"))).toEqual([]);
    expect(store.list()).toEqual([]);
  }

  beforeAll(() => {
    image = buildBusyboxImage({ workDir: join(work, "fx") });
    layered = buildLayeredBusyboxImage({ workDir: join(work, "fx-layered") });
    const tooManyDiffIds = makeImage([image.layers[0]!], { config: {} });
    const schema1 = jsonBlob("application/vnd.docker.distribution.manifest.v1+prettyjws", {
      schemaVersion: 1,
    });
    registry = startFaultRegistry({
      images: {
        "t/busybox:1": image,
        "t/layered:1": layered,
        "t/schema1:1": { ...tooManyDiffIds, manifest: schema1 },
      },
    });
  });
  afterAll(async () => {
    await registry.stop();
    rmSync(work, { recursive: true, force: true });
  });

  const layer = () => image.layers[0]!;
  const isLayer = (ctx: { kind: string; target: string }) =>
    ctx.kind === "blob" && ctx.target === layer().digest;

  it("refuses a layer whose content does not match its digest, leaving nothing", async () => {
    const store = await newStore();
    registry.setFault((ctx) => (isLayer(ctx) ? new Response(layered.layers[1]!.bytes) : undefined));
    const err = await rejectedMagikError(pullImage(`${registry.host}/t/busybox:1`, { store, ...fast }));
    expect(err.code).toBe("DigestMismatch");
    expect(err.details.digest).toBe(layer().digest);
    await expectEmpty(store);
  });

  it("refuses a manifest whose Docker-Content-Digest lies, and a pinned digest served with other content", async () => {
    const store = await newStore();
    const other = layered.manifest.digest;
    registry.setFault((ctx) =>
      ctx.kind === "manifest" && ctx.blob
        ? new Response(ctx.blob, {
            headers: { "content-type": MediaTypes.ociManifest, "docker-content-digest": other },
          })
        : undefined,
    );
    const lying = await rejectedMagikError(pullImage(`${registry.host}/t/busybox:1`, { store, ...fast }));
    expect(lying.code).toBe("DigestMismatch");
    expect(lying.details).toMatchObject({ expected: other, actual: image.manifest.digest });
    registry.setFault((ctx) =>
      ctx.kind === "manifest"
        ? new Response(layered.manifest.bytes, { headers: { "content-type": MediaTypes.ociManifest } })
        : undefined,
    );
    const pinned = await rejectedMagikError(
      pullImage(`${registry.host}/t/busybox@${image.manifest.digest}`, { store, ...fast }),
    );
    expect(pinned.code).toBe("DigestMismatch");
    expect(pinned.details.source).toBe("requested");
    await expectEmpty(store);
  });

  it("retries a truncated blob, and gives up cleanly when it stays truncated", async () => {
    const store = await newStore();
    registry.setFault((ctx) =>
      isLayer(ctx) && ctx.hit <= 2 ? truncatedResponse(ctx.blob!, 1000) : undefined,
    );
    registry.hits.clear();
    const ok = await pullImage(`${registry.host}/t/busybox:1`, { store, ...fast });
    expect(ok.downloaded).toEqual([layer().digest]);
    expect(registry.hits.get(`GET /v2/t/busybox/blobs/${layer().digest}`)).toBe(3);

    const store2 = await newStore();
    registry.setFault((ctx) => (isLayer(ctx) ? truncatedResponse(ctx.blob!, 4096) : undefined));
    const err = await rejectedMagikError(
      pullImage(`${registry.host}/t/busybox:1`, { store: store2, ...fast, retries: 2 }),
    );
    expect(err.code).toBe("ImagePullFailed");
    await expectEmpty(store2);
  });

  it("retries 500s with backoff and reports a registry that keeps failing", async () => {
    const store = await newStore();
    registry.hits.clear();
    registry.setFault((ctx) =>
      ctx.kind === "manifest" && ctx.hit <= 2 ? new Response("oops", { status: 500 }) : undefined,
    );
    await pullImage(`${registry.host}/t/busybox:1`, { store, ...fast });
    expect(registry.hits.get("GET /v2/t/busybox/manifests/1")).toBe(3);

    const store2 = await newStore();
    registry.setFault((ctx) => (isLayer(ctx) ? new Response("down", { status: 503 }) : undefined));
    const err = await rejectedMagikError(
      pullImage(`${registry.host}/t/busybox:1`, { store: store2, ...fast, retries: 1 }),
    );
    expect(err.code).toBe("ImagePullFailed");
    expect(err.details.status).toBe(503);
    await expectEmpty(store2);
  });

  it("times out on a registry that stalls, mid-body too, within the overall timeout", async () => {
    const store = await newStore();
    registry.setFault(async (ctx) =>
      ctx.kind === "manifest" ? Bun.sleep(5_000).then(() => undefined) : undefined,
    );
    const started = Date.now();
    const err = await rejectedMagikError(
      pullImage(`${registry.host}/t/busybox:1`, { store, ...fast, timeoutMs: 300 }),
    );
    expect(err.code).toBe("Timeout");
    expect(err.details).toMatchObject({ timeoutMs: 300, limit: "IMAGE_PULL_TIMEOUT_MS" });
    expect(Date.now() - started).toBeLessThan(2_000);

    registry.setFault((ctx) => {
      if (!isLayer(ctx)) return undefined;
      const bytes = ctx.blob!;
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          controller.enqueue(bytes.subarray(0, 2048));
          await Bun.sleep(5_000);
          controller.close();
        },
      });
      return new Response(body, { headers: { "content-length": String(bytes.length) } });
    });
    const stalled = await rejectedMagikError(
      pullImage(`${registry.host}/t/busybox:1`, { store, ...fast, timeoutMs: 400 }),
    );
    expect(stalled.code).toBe("Timeout");
    await expectEmpty(store);
  });

  it("reports an unreachable registry after retrying", async () => {
    const store = await newStore();
    const closed = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response() });
    const port = closed.port;
    await closed.stop(true);
    const err = await rejectedMagikError(
      pullImage(`127.0.0.1:${port}/t/busybox:1`, { store, ...fast, retries: 2 }),
    );
    expect(err.code).toBe("ImagePullFailed");
    expect(err.details).toMatchObject({ attempts: 3 });
    expect(err.message).toContain(`cannot reach 127.0.0.1:${port}`);
    await expectEmpty(store);
  });

  it("stops on cancellation", async () => {
    const store = await newStore();
    registry.setFault((ctx) => (isLayer(ctx) ? Bun.sleep(2_000).then(() => undefined) : undefined));
    const controller = new AbortController();
    const pending = pullImage(`${registry.host}/t/busybox:1`, {
      store,
      ...fast,
      signal: controller.signal,
      onProgress: (e) => {
        if (e.type === "layer" && e.status === "downloading") controller.abort();
      },
    });
    expect((await rejectedMagikError(pending)).code).toBe("Cancelled");
    await expectEmpty(store);
  });

  it("follows a blob redirect to another host without the Authorization header", async () => {
    const cdn = startFaultRegistry({ images: { "t/busybox:1": image } });
    const authorization = `Basic ${Buffer.from("u:p").toString("base64")}`;
    const guarded = startFaultRegistry({
      images: { "t/busybox:1": image },
      requireAuthorization: { value: authorization, challenge: 'Basic realm="test"' },
      fault: (ctx) =>
        ctx.kind === "blob" && ctx.req.headers.get("authorization") === authorization
          ? new Response(null, { status: 307, headers: { location: `${cdn.url}${ctx.url.pathname}` } })
          : undefined,
    });
    try {
      const store = await newStore();
      const pulled = await pullImage(`${guarded.host}/t/busybox:1`, {
        store,
        dockerConfig: false,
        credentials: { username: "u", password: "p" },
      });
      expect(pulled.downloaded).toEqual([layer().digest]);
      const cdnBlobRequests = cdn.log.filter((r) => r.path.includes("/blobs/"));
      expect(cdnBlobRequests.length).toBe(2);
      expect(cdnBlobRequests.every((r) => r.authorization === null)).toBe(true);
    } finally {
      await Promise.all([cdn.stop(), guarded.stop()]);
    }
  });

  it("enforces manifest, config and layer limits while reading", async () => {
    const store = await newStore();
    registry.setFault(undefined);
    const manifest = await rejectedMagikError(
      pullImage(`${registry.host}/t/busybox:1`, { store, ...fast, limits: { MAX_MANIFEST_SIZE: 100 } }),
    );
    expect(manifest.code).toBe("ImageTooLarge");
    // Without a Content-Length the limit still holds: the body is cut off as it arrives.
    registry.setFault((ctx) =>
      ctx.kind === "manifest"
        ? new Response(new Blob([ctx.blob!]).stream(), {
            headers: { "content-type": MediaTypes.ociManifest },
          })
        : undefined,
    );
    const streamed = await rejectedMagikError(
      pullImage(`${registry.host}/t/busybox:1`, { store, ...fast, limits: { MAX_MANIFEST_SIZE: 100 } }),
    );
    expect(streamed.code).toBe("ImageTooLarge");
    registry.setFault(undefined);
    const config = await rejectedMagikError(
      pullImage(`${registry.host}/t/busybox:1`, { store, ...fast, limits: { MAX_CONFIG_SIZE: 64 } }),
    );
    expect(config.details.limit).toBe("MAX_CONFIG_SIZE");
    const layerLimit = await rejectedMagikError(
      pullImage(`${registry.host}/t/busybox:1`, { store, ...fast, limits: { MAX_LAYER_SIZE: 1000 } }),
    );
    expect(layerLimit.details.limit).toBe("MAX_LAYER_SIZE");
    const layers = await rejectedMagikError(
      pullImage(`${registry.host}/t/layered:1`, { store, ...fast, limits: { MAX_LAYERS: 2 } }),
    );
    expect(layers.details).toMatchObject({ limit: "MAX_LAYERS", value: 3 });
    const schema1 = await rejectedMagikError(pullImage(`${registry.host}/t/schema1:1`, { store, ...fast }));
    expect(schema1.code).toBe("ManifestParseFailed");
    await expectEmpty(store);
  });

  it("keeps at most MAX_INFLIGHT_BLOBS transfers in flight", async () => {
    let inflight = 0;
    let peak = 0;
    registry.setFault(async (ctx) => {
      if (ctx.kind !== "blob" || ctx.target === layered.config.digest) return undefined;
      inflight++;
      peak = Math.max(peak, inflight);
      await Bun.sleep(50);
      inflight--;
      return undefined;
    });
    await pullImage(`${registry.host}/t/layered:1`, {
      store: await newStore(),
      ...fast,
      limits: { MAX_INFLIGHT_BLOBS: 1 },
    });
    expect(peak).toBe(1);
    peak = 0;
    await pullImage(`${registry.host}/t/layered:1`, { store: await newStore(), ...fast });
    expect(peak).toBe(3);
    registry.setFault(undefined);
  });
});
