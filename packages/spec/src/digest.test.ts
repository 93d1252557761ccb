import { describe, expect, it } from "vitest";
import { parseDigest, sha256Digest } from "./digest.ts";
import { isMagikError } from "./errors.ts";

const HEX = "a".repeat(64);

describe("parseDigest", () => {
  it("accepts canonical sha256 and sha512", () => {
    expect(parseDigest(`sha256:${HEX}`)).toEqual({ algorithm: "sha256", hex: HEX, digest: `sha256:${HEX}` });
    expect(parseDigest(`sha512:${"0".repeat(128)}`).algorithm).toBe("sha512");
  });

  it.each([
    ["uppercase hex", `sha256:${"A".repeat(64)}`],
    ["too short", `sha256:${"a".repeat(63)}`],
    ["too long", `sha256:${"a".repeat(65)}`],
    ["traversal", `sha256:../${"a".repeat(61)}`],
    ["NUL byte", `sha256:${"a".repeat(63)}\0`],
    ["unknown algorithm", `md5:${"a".repeat(32)}`],
    ["no algorithm", HEX],
    ["empty", ""],
    ["not a string", 42],
    ["sha512 with sha256 length", `sha512:${HEX}`],
  ])("refuses %s with InvalidInput", (_name, value) => {
    let caught: unknown;
    try {
      parseDigest(value);
    } catch (err) {
      caught = err;
    }
    expect(isMagikError(caught, "InvalidInput")).toBe(true);
  });

  it("computes sha256 digests", () => {
    expect(sha256Digest("")).toBe("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  });
});
