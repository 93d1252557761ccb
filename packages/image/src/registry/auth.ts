import { MagikError } from "@magikrun/spec";
import type { RegistryCredentials } from "../docker-config.ts";
import { readLimited } from "./read-limited.ts";
import { send, type TransportOptions } from "./transport.ts";
import { type AuthChallenge, parseWwwAuthenticate } from "./www-authenticate.ts";

const MAX_TOKEN_RESPONSE = 64 * 1024;
/** Registries that give no `expires_in` mean 60 s (distribution's token spec). */
const DEFAULT_TOKEN_TTL_S = 60;
/** Refresh a little early so a token does not expire between check and use. */
const EXPIRY_MARGIN_MS = 5_000;

interface CachedToken {
  header: string;
  expiresAt: number;
}

/**
 * Authorization for one registry: remembers the scheme the registry asked for, and caches Bearer tokens per scope
 * until they expire. Basic credentials are only ever sent after the registry asked for them.
 */
export class Authenticator {
  private scheme: "none" | "basic" | "bearer" = "none";
  private bearer: { realm: string; service?: string } | undefined;
  private readonly tokens = new Map<string, CachedToken>();
  /** Token requests made, for tests and diagnostics. */
  tokenRequests = 0;

  constructor(
    private readonly registry: string,
    private readonly credentials: RegistryCredentials | undefined,
    private readonly transport: TransportOptions,
  ) {}

  /** Header for a request in `scope`, when the registry's scheme is known; may fetch a token. */
  async headerFor(scope: string): Promise<string | undefined> {
    if (this.scheme === "basic") return this.basicHeader();
    if (this.scheme === "bearer" && this.bearer) {
      const cached = this.tokens.get(scope);
      if (cached && cached.expiresAt > Date.now()) return cached.header;
      return this.fetchToken(this.bearer.realm, this.bearer.service, scope);
    }
    return undefined;
  }

  /** Handles a 401: learns the scheme from its challenge and returns the header to retry with. */
  async answerChallenge(header: string | null, scope: string): Promise<string> {
    const challenges = parseWwwAuthenticate(header ?? "");
    const bearer = challenges.find((c) => c.scheme === "bearer");
    const basic = challenges.find((c) => c.scheme === "basic");
    if (bearer) return this.useBearer(bearer, scope);
    if (basic) {
      this.scheme = "basic";
      return this.basicHeader();
    }
    throw new MagikError("Unauthorized", `${this.registry} refused the request without a usable challenge`, {
      details: { registry: this.registry, wwwAuthenticate: header },
    });
  }

  private async useBearer(challenge: AuthChallenge, scope: string): Promise<string> {
    const realm = challenge.params.realm;
    if (!realm) {
      throw new MagikError("Unauthorized", `${this.registry} sent a Bearer challenge without a realm`, {
        details: { registry: this.registry, challenge },
      });
    }
    this.scheme = "bearer";
    this.bearer =
      challenge.params.service !== undefined ? { realm, service: challenge.params.service } : { realm };
    this.tokens.delete(scope);
    return this.fetchToken(realm, challenge.params.service, scope);
  }

  private basicHeader(): string {
    const creds = this.credentials;
    if (!creds || !("username" in creds)) {
      throw new MagikError("Unauthorized", `${this.registry} requires a username and password`, {
        details: { registry: this.registry, scheme: "basic" },
      });
    }
    return `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString("base64")}`;
  }

  private async fetchToken(realm: string, service: string | undefined, scope: string): Promise<string> {
    let realmUrl: URL;
    try {
      realmUrl = new URL(realm);
    } catch {
      throw new MagikError("Unauthorized", `${this.registry} sent an invalid token realm`, {
        details: { registry: this.registry, realm },
      });
    }
    if (realmUrl.protocol === "http:" && !this.transport.insecure && !isLoopback(realmUrl.hostname)) {
      throw new MagikError(
        "Unauthorized",
        `refusing to send credentials to a plain-http token realm ${realm}`,
        {
          details: { registry: this.registry, realm },
        },
      );
    }
    const creds = this.credentials;
    const headers: Record<string, string> = {};
    let init: RequestInit;
    if (creds && "identityToken" in creds) {
      const form = new URLSearchParams({
        grant_type: "refresh_token",
        refresh_token: creds.identityToken,
        client_id: "magikrun",
        scope,
        ...(service !== undefined ? { service } : {}),
      });
      init = { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: form };
    } else {
      if (service !== undefined) realmUrl.searchParams.set("service", service);
      realmUrl.searchParams.set("scope", scope);
      if (creds)
        headers.authorization = `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString("base64")}`;
      init = { method: "GET", headers };
    }
    this.tokenRequests++;
    const res = await send(realmUrl, init, this.transport);
    if (res.status === 401 || res.status === 403) {
      await res.body?.cancel().catch(() => {});
      throw new MagikError("Unauthorized", `the token server of ${this.registry} refused the credentials`, {
        details: { registry: this.registry, realm, status: res.status, credentials: creds !== undefined },
      });
    }
    if (!res.ok) {
      await res.body?.cancel().catch(() => {});
      throw new MagikError(
        "ImagePullFailed",
        `token request to ${realmUrl.host} failed with HTTP ${res.status}`,
        {
          details: { registry: this.registry, realm, status: res.status },
        },
      );
    }
    const body = await readLimited(res, MAX_TOKEN_RESPONSE, {
      limit: "token response",
      name: "token response",
    });
    let doc: { token?: unknown; access_token?: unknown; expires_in?: unknown; issued_at?: unknown };
    try {
      doc = JSON.parse(new TextDecoder().decode(body));
    } catch {
      doc = {};
    }
    const token = typeof doc.token === "string" && doc.token ? doc.token : doc.access_token;
    if (typeof token !== "string" || !token) {
      throw new MagikError("Unauthorized", `the token server of ${this.registry} returned no token`, {
        details: { registry: this.registry, realm },
      });
    }
    const ttl =
      typeof doc.expires_in === "number" && doc.expires_in > 0 ? doc.expires_in : DEFAULT_TOKEN_TTL_S;
    const header = `Bearer ${token}`;
    this.tokens.set(scope, { header, expiresAt: Date.now() + ttl * 1000 - EXPIRY_MARGIN_MS });
    return header;
  }
}

export function isLoopback(hostname: string): boolean {
  return (
    hostname === "localhost" ||
    hostname === "[::1]" ||
    hostname === "::1" ||
    /^127\.\d+\.\d+\.\d+$/.test(hostname)
  );
}
