import { describe, expect, it } from "vitest";
import { digestOfEntry, locateBlob } from "./layout.ts";
import { tempFileName, tempFileOwner } from "./temp-files.ts";

const HEX = "ab".repeat(32);

describe("locateBlob", () => {
  it("shards by the first two hex digits", () => {
    expect(locateBlob("/r", `sha256:${HEX}`)).toMatchObject({
      algorithm: "sha256",
      dir: "/r/blobs/sha256/ab",
      path: `/r/blobs/sha256/ab/${HEX}`,
    });
  });

  it("refuses malformed digests with InvalidInput", () => {
    expect(() => locateBlob("/r", `sha256:${HEX.toUpperCase()}`)).toThrow(/malformed/);
    expect(() => locateBlob("/r", `sha256/../../${HEX}`)).toThrow(/unsupported digest algorithm/);
  });
});

describe("digestOfEntry", () => {
  it("accepts only blob names in their own shard", () => {
    expect(digestOfEntry("sha256", "ab", HEX)).toBe(`sha256:${HEX}`);
    expect(digestOfEntry("sha256", "cd", HEX)).toBeUndefined();
    expect(digestOfEntry("sha256", "abab", HEX)).toBeUndefined();
    expect(digestOfEntry("sha256", "ab", `${HEX}.tmp`)).toBeUndefined();
    expect(digestOfEntry("sha512", "ab", HEX)).toBeUndefined();
    expect(digestOfEntry("sha512", "ab", HEX + HEX)).toBe(`sha512:${HEX}${HEX}`);
  });
});

describe("temp file names", () => {
  it("carry the writer's pid and are unique", () => {
    const a = tempFileName(1234);
    expect(tempFileOwner(a)).toBe(1234);
    expect(tempFileName(1234)).not.toBe(a);
    expect(tempFileOwner("1234-xyz.tmp")).toBeUndefined();
    expect(tempFileOwner("0-0123456789abcdef.tmp")).toBeUndefined();
  });
});
