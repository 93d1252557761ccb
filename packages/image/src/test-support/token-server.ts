import { createSign } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";

/**
 * A token server in the style of Docker Hub's auth service: `GET /token?service=…&scope=repository:name:pull,push`
 * with optional Basic credentials answers `{token, access_token, expires_in}`. Tokens are RS256 JWTs carrying the
 * signing certificate in `x5c`, which distribution's `auth.token` verifies against its `rootcertbundle`.
 */
export interface TokenServer {
  url: string;
  realm: string;
  service: string;
  issuer: string;
  certPath: string;
  /** Requests received, for tests that check scopes and caching. */
  requests: { scope: string[]; user?: string }[];
  /** Mints a token directly (for pushing fixtures without going through the client under test). */
  mint(scopes: string[], subject?: string): string;
  stop(): void;
}

export interface TokenServerOptions {
  dir: string;
  username: string;
  password: string;
  /** Lifetime of issued tokens; short values let tests see refreshes. */
  expiresInSeconds?: number;
  service?: string;
}

function b64url(data: string | Uint8Array): string {
  return Buffer.from(data).toString("base64url");
}

/** Self-signed RSA certificate and key, made with openssl (present on Debian). */
export function makeCertificate(dir: string): { certPath: string; keyPath: string } {
  const certPath = join(dir, "token-cert.pem");
  const keyPath = join(dir, "token-key.pem");
  const proc = Bun.spawnSync(
    ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", keyPath, "-out", certPath].concat(
      ["-days", "2", "-subj", "/CN=magikrun-test-token"],
    ),
    { stdout: "pipe", stderr: "pipe" },
  );
  if (proc.exitCode !== 0) throw new Error(`openssl failed: ${proc.stderr.toString()}`);
  return { certPath, keyPath };
}

function parseScope(scope: string): { type: string; name: string; actions: string[] } | undefined {
  const parts = scope.split(":");
  if (parts.length < 3) return undefined;
  const actions = parts.pop()!.split(",").filter(Boolean);
  const type = parts.shift()!;
  return { type, name: parts.join(":"), actions };
}

export function startTokenServer(options: TokenServerOptions): TokenServer {
  const { certPath, keyPath } = makeCertificate(options.dir);
  const key = readFileSync(keyPath, "utf8");
  const certDer = Buffer.from(
    readFileSync(certPath, "utf8")
      .replace(/-----(BEGIN|END) CERTIFICATE-----/g, "")
      .replace(/\s+/g, ""),
    "base64",
  );
  const service = options.service ?? "magikrun-test-registry";
  const issuer = "magikrun-test-issuer";
  const expiresIn = options.expiresInSeconds ?? 300;
  const requests: TokenServer["requests"] = [];

  const mint = (scopes: string[], subject = ""): string => {
    const now = Math.floor(Date.now() / 1000);
    const header = { alg: "RS256", typ: "JWT", x5c: [certDer.toString("base64")] };
    const claims = {
      iss: issuer,
      sub: subject,
      aud: service,
      exp: now + expiresIn,
      nbf: now - 10,
      iat: now,
      jti: crypto.randomUUID(),
      access: scopes.map(parseScope).filter((s) => s !== undefined),
    };
    const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const signature = createSign("RSA-SHA256").update(signingInput).sign(key);
    return `${signingInput}.${b64url(signature)}`;
  };

  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req) {
      const url = new URL(req.url);
      if (url.pathname !== "/token") return new Response("not found", { status: 404 });
      const scope = url.searchParams
        .getAll("scope")
        .flatMap((s) => s.split(" "))
        .filter(Boolean);
      const auth = req.headers.get("authorization");
      let user: string | undefined;
      if (auth?.startsWith("Basic ")) {
        const [u, p] = Buffer.from(auth.slice(6), "base64").toString().split(":");
        if (u !== options.username || p !== options.password) {
          return Response.json(
            { errors: [{ code: "UNAUTHORIZED", message: "bad credentials" }] },
            { status: 401 },
          );
        }
        user = u;
      }
      requests.push(user !== undefined ? { scope, user } : { scope });
      // Anonymous callers get a token without any access, as Docker Hub does for private repositories.
      const token = mint(user !== undefined ? scope : [], user ?? "");
      return Response.json({
        token,
        access_token: token,
        expires_in: expiresIn,
        issued_at: new Date().toISOString(),
      });
    },
  });
  const url = `http://127.0.0.1:${server.port}`;
  return {
    url,
    realm: `${url}/token`,
    service,
    issuer,
    certPath,
    requests,
    mint,
    stop: () => void server.stop(true),
  };
}
