import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Fixture, type FixtureImage, fixtureBlobs, topDescriptor } from "./fixture.ts";
import { startTokenServer, type TokenServer } from "./token-server.ts";

/** Debian's docker-registry (distribution 2.8), started on 127.0.0.1 for one test file. */
export const REGISTRY_BIN = Bun.which("docker-registry") ?? "/usr/bin/docker-registry";

export interface TestRegistry {
  /** `127.0.0.1:<port>`: the domain to put in references. */
  host: string;
  /** `http://127.0.0.1:<port>` */
  url: string;
  auth: "none" | "basic" | "token";
  username: string;
  password: string;
  tokenServer?: TokenServer;
  /** Authorization header value that may push and pull `repository` (for fixtures, bypassing the client). */
  authorization(repository: string): string | undefined;
  stop(): Promise<void>;
}

export interface StartRegistryOptions {
  auth?: "none" | "basic" | "token";
  username?: string;
  password?: string;
  /** Token lifetime for `auth: "token"`. */
  tokenExpiresInSeconds?: number;
}

export function hasRegistry(): boolean {
  return Bun.which(REGISTRY_BIN) !== null;
}

async function freePort(): Promise<number> {
  const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response() });
  const port = server.port!;
  await server.stop(true);
  return port;
}

async function waitReady(url: string, proc: Bun.Subprocess, deadline: number): Promise<boolean> {
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) return false;
    try {
      const res = await fetch(`${url}/v2/`);
      await res.arrayBuffer();
      if (res.status === 200 || res.status === 401) return true;
    } catch {
      // not listening yet
    }
    await Bun.sleep(25);
  }
  return false;
}

function configYaml(port: number, storage: string, authBlock: string): string {
  return [
    "version: 0.1",
    "log:",
    "  level: error",
    "  accesslog:",
    "    disabled: true",
    "storage:",
    "  filesystem:",
    `    rootdirectory: ${storage}`,
    "  delete:",
    "    enabled: true",
    "http:",
    `  addr: 127.0.0.1:${port}`,
    authBlock,
  ].join("\n");
}

/**
 * Starts a registry in a fresh temp dir: open, with Basic auth (bcrypt htpasswd), or with token auth behind a
 * token server started here. Retries on a port race. `stop()` kills it by pid and removes its storage.
 */
export async function startRegistry(options: StartRegistryOptions = {}): Promise<TestRegistry> {
  const auth = options.auth ?? "none";
  const username = options.username ?? "tester";
  const password = options.password ?? "s3cret-pass";
  const dir = mkdtempSync(join(tmpdir(), "magikrun-registry-"));
  const storage = join(dir, "storage");
  mkdirSync(storage);
  let tokenServer: TokenServer | undefined;
  let authBlock = "";
  if (auth === "basic") {
    const htpasswd = Bun.spawnSync(["htpasswd", "-Bbn", username, password], { stdout: "pipe" });
    if (htpasswd.exitCode !== 0) throw new Error("htpasswd failed (apache2-utils missing?)");
    writeFileSync(join(dir, "htpasswd"), htpasswd.stdout);
    authBlock = `auth:\n  htpasswd:\n    realm: magikrun-test\n    path: ${join(dir, "htpasswd")}`;
  } else if (auth === "token") {
    tokenServer = startTokenServer({
      dir,
      username,
      password,
      ...(options.tokenExpiresInSeconds !== undefined
        ? { expiresInSeconds: options.tokenExpiresInSeconds }
        : {}),
    });
    authBlock = [
      "auth:",
      "  token:",
      `    realm: ${tokenServer.realm}`,
      `    service: ${tokenServer.service}`,
      `    issuer: ${tokenServer.issuer}`,
      `    rootcertbundle: ${tokenServer.certPath}`,
    ].join("\n");
  }

  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const configPath = join(dir, "config.yml");
    writeFileSync(configPath, configYaml(port, storage, authBlock));
    const proc = Bun.spawn([REGISTRY_BIN, "serve", configPath], { stdout: "ignore", stderr: "pipe" });
    const url = `http://127.0.0.1:${port}`;
    if (await waitReady(url, proc, Date.now() + 10_000)) {
      const basic = `Basic ${Buffer.from(`${username}:${password}`).toString("base64")}`;
      return {
        host: `127.0.0.1:${port}`,
        url,
        auth,
        username,
        password,
        ...(tokenServer ? { tokenServer } : {}),
        authorization(repository) {
          if (auth === "basic") return basic;
          if (auth === "token")
            return `Bearer ${tokenServer!.mint([`repository:${repository}:pull,push`], username)}`;
          return undefined;
        },
        async stop() {
          proc.kill("SIGTERM");
          await proc.exited;
          tokenServer?.stop();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    }
    proc.kill("SIGKILL");
    await proc.exited;
  }
  tokenServer?.stop();
  rmSync(dir, { recursive: true, force: true });
  throw new Error("docker-registry did not start after 5 attempts");
}

async function expectOk(res: Response, what: string): Promise<void> {
  if (res.ok) {
    await res.arrayBuffer();
    return;
  }
  throw new Error(`${what}: HTTP ${res.status} ${await res.text()}`);
}

/**
 * Pushes a fixture with plain fetch (monolithic blob uploads, then manifests, children before the index), so
 * registry tests have content that does not depend on the client under test.
 */
export async function pushFixture(
  registry: Pick<TestRegistry, "url" | "authorization">,
  repository: string,
  tag: string,
  fixture: Fixture,
): Promise<void> {
  const authorization = registry.authorization(repository);
  const headers = (extra: Record<string, string> = {}): Record<string, string> =>
    authorization ? { ...extra, authorization } : extra;
  const base = `${registry.url}/v2/${repository}`;
  const manifestDigests = new Set<string>();
  const images: FixtureImage[] = fixture.kind === "index" ? fixture.images : [fixture];
  for (const img of images) manifestDigests.add(img.manifest.digest);
  if (fixture.kind === "index") manifestDigests.add(fixture.index.digest);

  for (const blob of fixtureBlobs(fixture).values()) {
    if (manifestDigests.has(blob.digest)) continue;
    const head = await fetch(`${base}/blobs/${blob.digest}`, { method: "HEAD", headers: headers() });
    if (head.ok) continue;
    const start = await fetch(`${base}/blobs/uploads/`, { method: "POST", headers: headers() });
    await expectOk(start, `start upload of ${blob.digest}`);
    const location = new URL(start.headers.get("location")!, registry.url);
    location.searchParams.set("digest", blob.digest);
    const put = await fetch(location, {
      method: "PUT",
      headers: headers({ "content-type": "application/octet-stream" }),
      body: blob.bytes,
    });
    await expectOk(put, `upload ${blob.digest}`);
  }
  for (const img of images) {
    const target = fixture.kind === "index" ? img.manifest.digest : tag;
    const res = await fetch(`${base}/manifests/${target}`, {
      method: "PUT",
      headers: headers({ "content-type": img.manifest.mediaType }),
      body: img.manifest.bytes,
    });
    await expectOk(res, `put manifest ${img.manifest.digest}`);
  }
  if (fixture.kind === "index") {
    const top = topDescriptor(fixture);
    const res = await fetch(`${base}/manifests/${tag}`, {
      method: "PUT",
      headers: headers({ "content-type": top.mediaType }),
      body: top.bytes,
    });
    await expectOk(res, `put index ${top.digest}`);
  }
}
