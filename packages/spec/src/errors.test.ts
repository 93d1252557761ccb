import { describe, expect, it } from "vitest";
import { ERROR_CODES, isMagikError, MagikError, toMagikError } from "./errors.ts";

describe("MagikError", () => {
  it("serializes to code, message, details and hint", () => {
    const err = new MagikError("BlobNotFound", "blob sha256:x is not in the store", {
      details: { digest: "sha256:x" },
    });
    expect(err.toJSON()).toEqual({
      code: "BlobNotFound",
      message: "blob sha256:x is not in the store",
      details: { digest: "sha256:x" },
      hint: "The blob is not in the store; pull the image again.",
    });
    expect(JSON.parse(JSON.stringify(err))).toEqual(err.toJSON());
    expect(err.name).toBe("MagikError");
    expect(err).toBeInstanceOf(Error);
  });

  it("takes a custom hint and keeps the cause", () => {
    const cause = new Error("ENOSPC");
    const err = new MagikError("StorageWriteFailed", "disk full", { hint: "Free some space.", cause });
    expect(err.hint).toBe("Free some space.");
    expect(err.cause).toBe(cause);
    expect(err.details).toEqual({});
  });

  it("has a non-empty default hint for every code, and unique codes", () => {
    expect(new Set(ERROR_CODES).size).toBe(ERROR_CODES.length);
    for (const code of ERROR_CODES) expect(new MagikError(code, "x").hint.length).toBeGreaterThan(10);
  });
});

describe("isMagikError", () => {
  it("recognizes MagikErrors, optionally of one code", () => {
    const err = new MagikError("Timeout", "too slow");
    expect(isMagikError(err)).toBe(true);
    expect(isMagikError(err, "Timeout")).toBe(true);
    expect(isMagikError(err, "Cancelled")).toBe(false);
    expect(isMagikError(new Error("plain"))).toBe(false);
    expect(isMagikError({ code: "Timeout", message: "look-alike" })).toBe(false);
    expect(isMagikError(undefined)).toBe(false);
  });
});

describe("toMagikError", () => {
  it("keeps a MagikError as it is", () => {
    const err = new MagikError("DigestMismatch", "bad");
    expect(toMagikError(err, "Internal", "wrapped")).toBe(err);
  });

  it("wraps a system error, keeping its errno and cause", () => {
    const cause = Object.assign(new Error("no space left on device"), { code: "ENOSPC" });
    const err = toMagikError(cause, "StorageWriteFailed", "writing failed");
    expect(err.code).toBe("StorageWriteFailed");
    expect(err.message).toBe("writing failed: no space left on device");
    expect(err.details).toEqual({ errno: "ENOSPC" });
    expect(err.cause).toBe(cause);
  });

  it("wraps non-Error values", () => {
    expect(toMagikError("boom", "Internal", "failed").message).toBe("failed: boom");
    expect(toMagikError(null, "Internal", "failed").details).toEqual({});
  });
});
