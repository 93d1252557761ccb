import { isMagikError, type MagikError } from "@magikrun/spec";
import { describe, expect, it } from "vitest";
import {
  familiarReference,
  formatReference,
  normalizeReference,
  parseReference,
  registryApiHost,
} from "./reference.ts";

const DIGEST = `sha256:${"a".repeat(64)}`;

function partOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    expect(isMagikError(err, "InvalidImageReference")).toBe(true);
    expect((err as MagikError).hint).toContain("registry");
    return (err as MagikError).details.part;
  }
  throw new Error("expected InvalidImageReference");
}

describe("parseReference", () => {
  it.each([
    ["busybox", "docker.io/library/busybox:latest"],
    ["busybox:1.36", "docker.io/library/busybox:1.36"],
    ["library/busybox", "docker.io/library/busybox:latest"],
    ["user/app:v1", "docker.io/user/app:v1"],
    ["index.docker.io/library/alpine", "docker.io/library/alpine:latest"],
    ["docker.io/alpine", "docker.io/library/alpine:latest"],
    ["localhost/app", "localhost/app:latest"],
    ["localhost:5000/a/b/c:t", "localhost:5000/a/b/c:t"],
    ["127.0.0.1:5000/x", "127.0.0.1:5000/x:latest"],
    ["[::1]:5000/x:y", "[::1]:5000/x:y"],
    ["ghcr.io/o/r__x.y-z---w", "ghcr.io/o/r__x.y-z---w:latest"],
    [`busybox@${DIGEST}`, `docker.io/library/busybox@${DIGEST}`],
    [`q.io/x:tag@${DIGEST}`, `q.io/x:tag@${DIGEST}`],
  ])("normalizes %s", (input, canonical) => {
    expect(normalizeReference(input)).toBe(canonical);
    // Canonical forms are fixed points.
    expect(normalizeReference(canonical)).toBe(canonical);
  });

  it("keeps the parts apart", () => {
    expect(parseReference(`r.example:443/team/app:1.0@${DIGEST}`)).toEqual({
      domain: "r.example:443",
      path: "team/app",
      tag: "1.0",
      digest: DIGEST,
    });
    expect(parseReference(`app@${DIGEST}`).tag).toBeUndefined();
  });

  it("names the offending part", () => {
    expect(partOf(() => parseReference(""))).toBe("reference");
    expect(partOf(() => parseReference("Busybox"))).toBe("path");
    expect(partOf(() => parseReference("docker.io/UP/x"))).toBe("path");
    expect(partOf(() => parseReference("a//b"))).toBe("path");
    expect(partOf(() => parseReference("a/-b"))).toBe("path");
    expect(partOf(() => parseReference("busybox:"))).toBe("tag");
    expect(partOf(() => parseReference("busybox:.x"))).toBe("tag");
    expect(partOf(() => parseReference(`busybox:${"t".repeat(129)}`))).toBe("tag");
    expect(partOf(() => parseReference("busybox@sha256:abc"))).toBe("digest");
    expect(partOf(() => parseReference("busybox@md5:abc"))).toBe("digest");
    expect(partOf(() => parseReference("localhost:99999/x"))).toBe("port");
    expect(partOf(() => parseReference("localhost:0/x"))).toBe("port");
    expect(partOf(() => parseReference("bad_host.io/x"))).toBe("registry");
    expect(partOf(() => parseReference("-a.io/x"))).toBe("registry");
    expect(partOf(() => parseReference(`x.io/${"a".repeat(260)}`))).toBe("length");
  });

  it("enforces MAX_IMAGE_REF_LEN, overridable", () => {
    const long = `r.io/${"a/".repeat(40)}b`;
    expect(partOf(() => parseReference(long, { MAX_IMAGE_REF_LEN: 50 }))).toBe("length");
    expect(parseReference(long, { MAX_IMAGE_REF_LEN: 512 }).domain).toBe("r.io");
    const err = (() => {
      try {
        parseReference("x".repeat(600));
      } catch (e) {
        return e as MagikError;
      }
    })();
    expect(err?.details).toMatchObject({ part: "length", length: 600, max: 512 });
  });
});

describe("formatting", () => {
  it("gives familiar names and the Docker Hub API host", () => {
    expect(familiarReference(parseReference("busybox"))).toBe("busybox:latest");
    expect(familiarReference(parseReference("user/app:v1"))).toBe("user/app:v1");
    expect(familiarReference(parseReference("localhost:5000/x"))).toBe("localhost:5000/x:latest");
    expect(registryApiHost("docker.io")).toBe("registry-1.docker.io");
    expect(registryApiHost("localhost:5000")).toBe("localhost:5000");
    expect(formatReference({ domain: "a.io", path: "b", digest: DIGEST })).toBe(`a.io/b@${DIGEST}`);
  });
});
