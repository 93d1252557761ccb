import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isMagikError } from "@magikrun/spec";
import { afterAll, describe, expect, it } from "vitest";
import { credentialsFromDockerConfig, dockerConfigPath } from "./docker-config.ts";

describe("credentialsFromDockerConfig", () => {
  const dir = mkdtempSync(join(tmpdir(), "magikrun-docker-config-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const write = (doc: unknown) => {
    const path = join(dir, `config-${Math.random()}.json`);
    writeFileSync(path, typeof doc === "string" ? doc : JSON.stringify(doc));
    return path;
  };
  const b64 = (s: string) => Buffer.from(s).toString("base64");

  it("finds auths by host, URL forms and Docker Hub's legacy key", () => {
    const path = write({
      auths: {
        "https://index.docker.io/v1/": { auth: b64("hub:pw:with:colons") },
        "registry.example:5000": { auth: b64("u:p") },
        "https://ghcr.io": { username: "gh", password: "tok" },
        "quay.io": { identitytoken: "refresh-me" },
      },
    });
    expect(credentialsFromDockerConfig("docker.io", path)).toEqual({
      username: "hub",
      password: "pw:with:colons",
    });
    expect(credentialsFromDockerConfig("registry.example:5000", path)).toEqual({
      username: "u",
      password: "p",
    });
    expect(credentialsFromDockerConfig("ghcr.io", path)).toEqual({ username: "gh", password: "tok" });
    expect(credentialsFromDockerConfig("quay.io", path)).toEqual({ identityToken: "refresh-me" });
    expect(credentialsFromDockerConfig("other.io", path)).toBeUndefined();
    expect(credentialsFromDockerConfig("other.io", join(dir, "missing.json"))).toBeUndefined();
  });

  it("refuses malformed files instead of ignoring them", () => {
    const err = (() => {
      try {
        credentialsFromDockerConfig("x.io", write("{oops"));
      } catch (e) {
        return e;
      }
    })();
    expect(isMagikError(err, "InvalidInput")).toBe(true);
    expect(() =>
      credentialsFromDockerConfig("x.io", write({ auths: { "x.io": { auth: b64("nocolon") } } })),
    ).toThrow(/not base64 user:password/);
  });

  it("honours DOCKER_CONFIG", () => {
    expect(dockerConfigPath({ DOCKER_CONFIG: "/etc/dc", HOME: "/h" })).toBe("/etc/dc/config.json");
    expect(dockerConfigPath({ HOME: "/h" })).toBe("/h/.docker/config.json");
  });
});
