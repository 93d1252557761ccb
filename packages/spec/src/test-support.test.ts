import { describe, expect, it } from "vitest";
import { MagikError } from "./errors.ts";
import { rejectedMagikError, thrownMagikError } from "./test-support.ts";

describe("MagikError catchers for tests", () => {
  const refused = new MagikError("InvalidInput", "refused", { details: { value: 1 } });

  it("return the MagikError a call throws or a promise rejects with", async () => {
    expect(
      thrownMagikError(() => {
        throw refused;
      }),
    ).toBe(refused);
    expect(await rejectedMagikError(Promise.reject(refused))).toBe(refused);
  });

  it("fail when the call succeeds", async () => {
    expect(() => thrownMagikError(() => 1)).toThrow(/returned/);
    await expect(rejectedMagikError(Promise.resolve(1))).rejects.toThrow(/resolved/);
  });

  it("rethrow errors that are not MagikErrors", async () => {
    const plain = new TypeError("plain");
    expect(() =>
      thrownMagikError(() => {
        throw plain;
      }),
    ).toThrow(plain);
    await expect(rejectedMagikError(Promise.reject(plain))).rejects.toBe(plain);
  });
});
