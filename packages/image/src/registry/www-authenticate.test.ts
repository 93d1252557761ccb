import { describe, expect, it } from "vitest";
import { parseWwwAuthenticate } from "./www-authenticate.ts";

describe("parseWwwAuthenticate", () => {
  it("parses Bearer challenges with quoted commas and escapes", () => {
    expect(
      parseWwwAuthenticate(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull,push"',
      ),
    ).toEqual([
      {
        scheme: "bearer",
        params: {
          realm: "https://auth.docker.io/token",
          service: "registry.docker.io",
          scope: "repository:a/b:pull,push",
        },
      },
    ]);
    expect(parseWwwAuthenticate('Basic realm="say \\"hi\\""')).toEqual([
      { scheme: "basic", params: { realm: 'say "hi"' } },
    ]);
  });

  it("splits several challenges and tolerates junk", () => {
    const parsed = parseWwwAuthenticate(
      'Basic realm="r", Bearer realm="https://t/x", error=insufficient_scope',
    );
    expect(parsed.map((c) => c.scheme)).toEqual(["basic", "bearer"]);
    expect(parsed[1]!.params).toEqual({ realm: "https://t/x", error: "insufficient_scope" });
    expect(parseWwwAuthenticate("")).toEqual([]);
    expect(parseWwwAuthenticate(",,, ;;")).toEqual([]);
  });
});
