import { isMagikError, type MagikError } from "@magikrun/spec";
import { afterAll, describe, expect, it } from "vitest";
import { startFaultRegistry } from "../test-support/fault-registry.ts";
import { RegistryClient } from "./client.ts";

async function errorOf(promise: Promise<unknown>): Promise<MagikError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isMagikError(err)) throw new Error(`expected a MagikError, got ${String(err)}`);
  return err;
}

describe("RegistryClient", () => {
  const registry = startFaultRegistry({ images: {} });
  afterAll(() => registry.stop());
  const client = () => new RegistryClient({ domain: registry.host, dockerConfig: false, retryBaseMs: 1 });

  it("pings /v2/ over plain HTTP on loopback and tells a non-registry apart", async () => {
    expect(client().baseUrl).toBe(`http://${registry.host}`);
    expect(new RegistryClient({ domain: "registry.example", dockerConfig: false }).baseUrl).toBe(
      "https://registry.example",
    );
    expect(new RegistryClient({ domain: "docker.io", dockerConfig: false }).baseUrl).toBe(
      "https://registry-1.docker.io",
    );
    registry.setFault(undefined);
    expect((await client().ping()).status).toBe(200);
    registry.setFault((ctx) => (ctx.kind === "ping" ? new Response("no", { status: 404 }) : undefined));
    expect((await errorOf(client().ping())).code).toBe("ImagePullFailed");
  });

  it("refuses redirect loops and non-HTTP redirect targets", async () => {
    registry.setFault((ctx) =>
      ctx.kind === "ping" ? new Response(null, { status: 302, headers: { location: "/v2/" } }) : undefined,
    );
    expect((await errorOf(client().ping())).details.redirects).toBe(5);
    registry.setFault((ctx) =>
      ctx.kind === "ping"
        ? new Response(null, { status: 302, headers: { location: "file:///etc/passwd" } })
        : undefined,
    );
    expect((await errorOf(client().ping())).message).toContain("file:");
  });

  it("exchanges an identity token (docker config `identitytoken`) for an access token by POST", async () => {
    const seen: Record<string, string>[] = [];
    const tokenServer = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      async fetch(req) {
        const form = Object.fromEntries(new URLSearchParams(await req.text()));
        seen.push({ method: req.method, ...form });
        if (form.refresh_token !== "refresh-me") return new Response("no", { status: 401 });
        return Response.json({ access_token: "granted", expires_in: 300 });
      },
    });
    const guarded = startFaultRegistry({
      images: {},
      requireAuthorization: {
        value: "Bearer granted",
        challenge: `Bearer realm="http://127.0.0.1:${tokenServer.port}/token",service="svc"`,
      },
    });
    try {
      const ok = new RegistryClient({ domain: guarded.host, credentials: { identityToken: "refresh-me" } });
      const res = await ok.request("some/repo", "/tags/list");
      expect(res.status).toBe(404);
      expect(seen[0]).toMatchObject({
        method: "POST",
        grant_type: "refresh_token",
        service: "svc",
        scope: "repository:some/repo:pull",
      });
      const bad = new RegistryClient({ domain: guarded.host, credentials: { identityToken: "stale" } });
      const err = await errorOf(bad.request("some/repo", "/tags/list"));
      expect(err.code).toBe("Unauthorized");
      expect(err.details.credentials).toBe(true);
    } finally {
      await guarded.stop();
      await tokenServer.stop(true);
    }
  });

  it("infers the type of manifests that omit mediaType from their shape", async () => {
    const bare = (doc: unknown) => {
      const bytes = new TextEncoder().encode(JSON.stringify(doc));
      return new Response(bytes, { headers: { "content-type": "application/json" } });
    };
    const index = { schemaVersion: 2, manifests: [] };
    const manifest = { schemaVersion: 2, config: {}, layers: [] };
    registry.setFault((ctx) =>
      ctx.target === "index" ? bare(index) : ctx.target === "image" ? bare(manifest) : undefined,
    );
    expect((await client().getManifest("r", "index", 4096)).mediaType).toBe(
      "application/vnd.oci.image.index.v1+json",
    );
    expect((await client().getManifest("r", "image", 4096)).mediaType).toBe(
      "application/vnd.oci.image.manifest.v1+json",
    );
    registry.setFault((ctx) => (ctx.kind === "manifest" ? new Response("<html>") : undefined));
    expect((await errorOf(client().getManifest("r", "x", 4096))).code).toBe("ManifestParseFailed");
  });
});
