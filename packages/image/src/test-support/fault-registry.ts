import { type Fixture, fixtureBlobs, topDescriptor } from "./fixture.ts";

/**
 * A registry served from memory by Bun.serve on 127.0.0.1, for faults docker-registry cannot produce: wrong bytes
 * for a digest, truncated bodies, 5xx, slow answers, redirects. Each request first goes through `fault`, which
 * may answer instead of the registry; `hits` counts requests per path so faults can be "first N times".
 */
export interface FaultContext {
  req: Request;
  url: URL;
  /** 1 for the first request to this method+path. */
  hit: number;
  kind: "ping" | "manifest" | "blob" | "other";
  /** Digest or tag from the path. */
  target: string;
  /** The blob that would be served for a blob/manifest request, when known. */
  blob?: Uint8Array;
}

export type FaultHandler = (ctx: FaultContext) => Response | undefined | Promise<Response | undefined>;

export interface FaultRegistry {
  host: string;
  url: string;
  hits: Map<string, number>;
  /** Every request as `METHOD path`, with its Authorization header. */
  log: { method: string; path: string; host: string; authorization: string | null }[];
  setFault(handler: FaultHandler | undefined): void;
  stop(): Promise<void>;
}

export interface FaultRegistryOptions {
  /** `repository:tag` → fixture */
  images: Record<string, Fixture>;
  /** Demand this exact Authorization header (answer 401 with `challenge` otherwise). */
  requireAuthorization?: { value: string; challenge: string };
  fault?: FaultHandler;
}

/** Streams `bytes` then breaks the connection before the announced length: a dropped transfer. */
export function truncatedResponse(
  bytes: Uint8Array,
  keep: number,
  headers: Record<string, string> = {},
): Response {
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(bytes.subarray(0, keep));
      controller.error(new Error("connection dropped by fault registry"));
    },
  });
  return new Response(body, { headers: { ...headers, "content-length": String(bytes.length) } });
}

export function startFaultRegistry(options: FaultRegistryOptions): FaultRegistry {
  const blobs = new Map<string, { bytes: Uint8Array; mediaType: string }>();
  const tags = new Map<string, string>();
  for (const [name, fixture] of Object.entries(options.images)) {
    for (const b of fixtureBlobs(fixture).values())
      blobs.set(b.digest, { bytes: b.bytes, mediaType: b.mediaType });
    tags.set(name, topDescriptor(fixture).digest);
  }
  const hits = new Map<string, number>();
  const log: FaultRegistry["log"] = [];
  let fault = options.fault;

  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 30,
    // Bodies that break on purpose are the point of this server: nothing to log.
    error: () => new Response("fault registry error", { status: 500 }),
    async fetch(req) {
      const url = new URL(req.url);
      const key = `${req.method} ${url.pathname}`;
      const hit = (hits.get(key) ?? 0) + 1;
      hits.set(key, hit);
      log.push({
        method: req.method,
        path: url.pathname,
        host: url.host,
        authorization: req.headers.get("authorization"),
      });
      const m = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(url.pathname);
      const kind = url.pathname === "/v2/" ? "ping" : m ? (m[2] === "blobs" ? "blob" : "manifest") : "other";
      const target = m?.[3] ?? "";
      const digest = kind === "manifest" && !target.includes(":") ? tags.get(`${m?.[1]}:${target}`) : target;
      const stored = digest !== undefined ? blobs.get(digest) : undefined;
      const ctx: FaultContext = { req, url, hit, kind, target, ...(stored ? { blob: stored.bytes } : {}) };
      const injected = await fault?.(ctx);
      if (injected) return injected;
      const required = options.requireAuthorization;
      if (required && req.headers.get("authorization") !== required.value) {
        return Response.json(
          { errors: [{ code: "UNAUTHORIZED", message: "authentication required" }] },
          { status: 401, headers: { "www-authenticate": required.challenge } },
        );
      }
      if (kind === "ping") return Response.json({});
      if (!stored || !digest) {
        return Response.json(
          { errors: [{ code: kind === "blob" ? "BLOB_UNKNOWN" : "MANIFEST_UNKNOWN", message: "unknown" }] },
          { status: 404 },
        );
      }
      const headers = {
        "content-type": kind === "manifest" ? stored.mediaType : "application/octet-stream",
        "docker-content-digest": digest,
        "content-length": String(stored.bytes.length),
      };
      return new Response(req.method === "HEAD" ? null : stored.bytes, { headers });
    },
  });
  const host = `127.0.0.1:${server.port}`;
  return {
    host,
    url: `http://${host}`,
    hits,
    log,
    setFault(handler) {
      fault = handler;
    },
    stop: () => server.stop(true),
  };
}
