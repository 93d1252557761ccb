import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { MagikError } from "@magikrun/spec";
import { DOCKER_HUB_DOMAIN } from "./reference.ts";

/** Credentials for one registry: a user/password pair, or an identity (refresh) token. */
export type RegistryCredentials = { username: string; password: string } | { identityToken: string };

/** `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`: the file docker, podman and skopeo share. */
export function dockerConfigPath(env: Record<string, string | undefined> = process.env): string {
  return join(env.DOCKER_CONFIG ?? join(env.HOME ?? homedir(), ".docker"), "config.json");
}

/** The keys under which an `auths` entry may name a registry (Docker Hub has a legacy URL). */
function authKeys(domain: string): string[] {
  if (domain === DOCKER_HUB_DOMAIN) {
    return ["https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io"];
  }
  return [domain, `https://${domain}`, `http://${domain}`, `https://${domain}/v1/`, `https://${domain}/v2/`];
}

/**
 * Looks up credentials for `domain` in a docker config file's `auths` (`auth` is base64 `user:password`;
 * `identitytoken` is used as an OAuth2 refresh token). A missing file means no credentials; a malformed one is
 * an error, because silently ignoring it would turn into confusing 401s. Credential helpers are not run.
 */
export function credentialsFromDockerConfig(
  domain: string,
  path = dockerConfigPath(),
): RegistryCredentials | undefined {
  if (!existsSync(path)) return undefined;
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new MagikError("InvalidInput", `cannot read docker config ${path}: ${(err as Error).message}`, {
      details: { path },
      hint: "Fix or remove the file; it must be JSON with an `auths` object.",
    });
  }
  const auths = (doc as { auths?: unknown } | null)?.auths;
  if (typeof auths !== "object" || auths === null) return undefined;
  const normalized = new Map<string, unknown>();
  for (const [key, value] of Object.entries(auths)) normalized.set(key.replace(/\/+$/, "/"), value);
  for (const key of authKeys(domain)) {
    const entry = (normalized.get(key) ?? normalized.get(`${key}/`)) as
      | { auth?: unknown; username?: unknown; password?: unknown; identitytoken?: unknown }
      | undefined;
    if (!entry || typeof entry !== "object") continue;
    if (typeof entry.identitytoken === "string" && entry.identitytoken)
      return { identityToken: entry.identitytoken };
    if (typeof entry.auth === "string" && entry.auth) {
      const decoded = Buffer.from(entry.auth, "base64").toString("utf8");
      const colon = decoded.indexOf(":");
      if (colon < 0) {
        throw new MagikError(
          "InvalidInput",
          `docker config ${path}: auth for ${key} is not base64 user:password`,
          {
            details: { path, registry: key },
          },
        );
      }
      return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
    }
    if (typeof entry.username === "string" && typeof entry.password === "string") {
      return { username: entry.username, password: entry.password };
    }
  }
  return undefined;
}
