import {
  isIndexMediaType,
  isManifestMediaType,
  MANIFEST_ACCEPT,
  MagikError,
  MediaTypes,
  parseDigest,
  sha256Digest,
} from "@magikrun/spec";
import { credentialsFromDockerConfig, type RegistryCredentials } from "../docker-config.ts";
import { registryApiHost } from "../reference.ts";
import { Authenticator, isLoopback } from "./auth.ts";
import { readLimited } from "./read-limited.ts";
import { DEFAULT_TRANSPORT, send, type TransportOptions } from "./transport.ts";

export interface RegistryClientOptions {
  /** Registry domain as in references (`docker.io`, `127.0.0.1:5000`). */
  domain: string;
  /** Explicit credentials; otherwise the docker config file is consulted. */
  credentials?: RegistryCredentials;
  /** Docker config file to read credentials from; `false` to never read one. */
  dockerConfig?: string | false;
  /** Use plain HTTP. Loopback registries (localhost, 127.x, ::1) always use it. */
  insecure?: boolean;
  signal?: AbortSignal;
  retries?: number;
  retryBaseMs?: number;
}

export interface FetchedManifest {
  bytes: Uint8Array;
  digest: string;
  mediaType: string;
}

/**
 * The distribution API over fetch, for one registry: manifests (size-limited, digest-checked) and blob streams,
 * with authentication, retries and redirects handled below.
 */
export class RegistryClient {
  readonly domain: string;
  readonly baseUrl: string;
  readonly auth: Authenticator;
  private readonly transport: TransportOptions;

  constructor(options: RegistryClientOptions) {
    this.domain = options.domain;
    const apiHost = registryApiHost(options.domain);
    const hostname = apiHost.replace(/:\d+$/, "");
    const plain = options.insecure === true || isLoopback(hostname);
    this.baseUrl = `${plain ? "http" : "https"}://${apiHost}`;
    this.transport = {
      retries: options.retries ?? DEFAULT_TRANSPORT.retries,
      retryBaseMs: options.retryBaseMs ?? DEFAULT_TRANSPORT.retryBaseMs,
      insecure: plain,
      ...(options.signal ? { signal: options.signal } : {}),
    };
    const credentials =
      options.credentials ??
      (options.dockerConfig === false
        ? undefined
        : credentialsFromDockerConfig(options.domain, options.dockerConfig));
    this.auth = new Authenticator(options.domain, credentials, this.transport);
  }

  /**
   * An authenticated request for `repository`: sends the cached authorization, answers one 401 challenge, and
   * turns a second 401/403 into Unauthorized.
   */
  async request(
    repository: string,
    path: string,
    init: {
      method?: string;
      headers?: Record<string, string>;
      body?: Uint8Array | ReadableStream<Uint8Array> | string;
      actions?: string;
    } = {},
  ): Promise<Response> {
    const url = new URL(`${this.baseUrl}/v2/${repository}${path}`);
    const scope = `repository:${repository}:${init.actions ?? "pull"}`;
    const attempt = async (authorization: string | undefined) =>
      send(
        url,
        {
          method: init.method ?? "GET",
          headers: { ...(init.headers ?? {}), ...(authorization ? { authorization } : {}) },
          ...(init.body !== undefined ? { body: init.body } : {}),
        },
        this.transport,
      );
    let res = await attempt(await this.auth.headerFor(scope));
    if (res.status === 401) {
      await res.body?.cancel().catch(() => {});
      res = await attempt(await this.auth.answerChallenge(res.headers.get("www-authenticate"), scope));
    }
    if (res.status === 401 || res.status === 403) {
      await res.body?.cancel().catch(() => {});
      throw new MagikError(
        "Unauthorized",
        `${this.domain} denied access to ${repository} (HTTP ${res.status})`,
        {
          details: { registry: this.domain, repository, status: res.status },
        },
      );
    }
    return res;
  }

  /** `GET /v2/` — checks the registry answers the distribution API (and learns its auth scheme). */
  async ping(): Promise<{ status: number; apiVersion: string | null }> {
    const res = await send(new URL(`${this.baseUrl}/v2/`), { method: "GET" }, this.transport);
    await res.body?.cancel().catch(() => {});
    if (res.status !== 200 && res.status !== 401) {
      throw new MagikError(
        "ImagePullFailed",
        `${this.domain} is not a registry (GET /v2/ gave ${res.status})`,
        {
          details: { registry: this.domain, status: res.status },
        },
      );
    }
    return { status: res.status, apiVersion: res.headers.get("docker-distribution-api-version") };
  }

  /**
   * A manifest by tag or digest, read within `maxSize`. Its sha256 must match the digest asked for and the
   * digest the registry claims in Docker-Content-Digest.
   */
  async getManifest(repository: string, selector: string, maxSize: number): Promise<FetchedManifest> {
    const res = await this.request(repository, `/manifests/${encodeURIComponent(selector)}`, {
      headers: { accept: MANIFEST_ACCEPT },
    });
    if (res.status === 404) {
      await res.body?.cancel().catch(() => {});
      throw new MagikError(
        "ImageNotFound",
        `${this.domain}/${repository}:${selector} was not found in the registry`,
        {
          details: { registry: this.domain, repository, reference: selector },
          hint: "Check the repository name and tag; private images also need credentials.",
        },
      );
    }
    if (!res.ok) throw await httpError(res, "manifest", this.domain, repository, selector);
    const bytes = await readLimited(res, maxSize, {
      limit: "MAX_MANIFEST_SIZE",
      name: `manifest ${selector}`,
    });
    const digest = sha256Digest(bytes);
    const expected = selector.includes(":") ? parseDigest(selector).digest : undefined;
    const claimed = res.headers.get("docker-content-digest");
    for (const [source, value] of [
      ["requested", expected],
      ["Docker-Content-Digest", claimed?.startsWith("sha256:") ? claimed : undefined],
    ] as const) {
      if (value !== undefined && value !== digest) {
        throw new MagikError(
          "DigestMismatch",
          `manifest digest ${digest} does not match the ${source} ${value}`,
          {
            details: { registry: this.domain, repository, expected: value, actual: digest, source },
          },
        );
      }
    }
    let doc: { mediaType?: unknown; manifests?: unknown; layers?: unknown } | null;
    try {
      doc = JSON.parse(new TextDecoder().decode(bytes));
    } catch {
      throw new MagikError("ManifestParseFailed", `manifest ${selector} from ${this.domain} is not JSON`, {
        details: { registry: this.domain, repository, reference: selector },
      });
    }
    const header = res.headers.get("content-type")?.split(";")[0]?.trim() ?? "";
    return { bytes, digest, mediaType: manifestMediaType(doc, header) };
  }

  /** Opens a blob for streaming. The caller verifies the content against `digest` while storing it. */
  async openBlob(repository: string, digest: string): Promise<Response> {
    parseDigest(digest);
    const res = await this.request(repository, `/blobs/${digest}`);
    if (res.status === 404) {
      await res.body?.cancel().catch(() => {});
      throw new MagikError("BlobNotFound", `blob ${digest} is not in ${this.domain}/${repository}`, {
        details: { registry: this.domain, repository, digest },
        hint: "The registry lost a blob its manifest names; the image is broken upstream.",
      });
    }
    if (!res.ok) throw await httpError(res, "blob", this.domain, repository, digest);
    return res;
  }

  /** Reads a small blob (a config) into memory within `maxSize`, verifying its digest. */
  async getBlob(repository: string, digest: string, maxSize: number, limitName: string): Promise<Uint8Array> {
    const res = await this.openBlob(repository, digest);
    const bytes = await readLimited(res, maxSize, { limit: limitName, name: `blob ${digest}` });
    const actual = sha256Digest(bytes);
    if (actual !== digest) {
      throw new MagikError("DigestMismatch", `blob ${digest} from ${this.domain} has digest ${actual}`, {
        details: { registry: this.domain, repository, expected: digest, actual },
      });
    }
    return bytes;
  }
}

async function httpError(
  res: Response,
  what: string,
  domain: string,
  repository: string,
  target: string,
): Promise<MagikError> {
  const text = await res.text().catch(() => "");
  return new MagikError(
    "ImagePullFailed",
    `fetching ${what} ${target} from ${domain} failed with HTTP ${res.status}`,
    {
      details: { registry: domain, repository, target, status: res.status, body: text.slice(0, 300) },
    },
  );
}

/**
 * The body's own mediaType wins over the Content-Type header. OCI documents may omit it (it is only a SHOULD), so
 * when neither names a known type the shape decides: `manifests` is an index, `layers` an image manifest.
 */
function manifestMediaType(
  doc: { mediaType?: unknown; manifests?: unknown; layers?: unknown } | null,
  header: string,
): string {
  if (typeof doc?.mediaType === "string" && doc.mediaType) return doc.mediaType;
  if (isIndexMediaType(header) || isManifestMediaType(header)) return header;
  if (Array.isArray(doc?.manifests)) return MediaTypes.ociIndex;
  if (Array.isArray(doc?.layers)) return MediaTypes.ociManifest;
  return header;
}
