import { describe, expect, it } from "vitest";
import { z } from "zod";
import { z as zm } from "zod/mini";
import { parseJsonWith, parseWith } from "./parse.ts";
import { thrownMagikError } from "./test-support.ts";

const Schema = z.object({ name: z.string(), items: z.array(z.object({ size: z.number().int() })) });

describe("parseWith", () => {
  it("returns the parsed value", () => {
    expect(parseWith(Schema, { name: "a", items: [] }, "thing")).toEqual({ name: "a", items: [] });
  });

  it("names the path of the first offending field, and lists every issue", () => {
    const err = thrownMagikError(() =>
      parseWith(Schema, { name: 1, items: [{ size: 1 }, { size: "2" }] }, "thing"),
    );
    expect(err.code).toBe("InvalidInput");
    expect(err.message).toMatch(/^invalid thing at name: /);
    expect(err.details.issues).toEqual([
      { path: "name", message: expect.any(String) },
      { path: "items.1.size", message: expect.any(String) },
    ]);
  });

  it("uses the given code and omits the path for a top-level problem", () => {
    const err = thrownMagikError(() => parseWith(Schema, "nope", "manifest", "ManifestParseFailed"));
    expect(err.code).toBe("ManifestParseFailed");
    expect(err.message).toMatch(/^invalid manifest: /);
  });
});

describe("parseWith with zod/mini schemas", () => {
  const Mini = zm.object({
    name: zm.string(),
    items: zm.array(zm.object({ size: zm.int() })),
  });

  it("returns the parsed value, typed", () => {
    const value: { name: string; items: { size: number }[] } = parseWith(
      Mini,
      { name: "a", items: [] },
      "thing",
    );
    expect(value).toEqual({ name: "a", items: [] });
  });

  it("reports the same message and issues as the classic schema", () => {
    const bad = { name: 1, items: [{ size: 1 }, { size: 1.5 }] };
    const mini = thrownMagikError(() => parseWith(Mini, bad, "thing"));
    const classic = thrownMagikError(() => parseWith(Schema, bad, "thing"));
    expect(mini.message).toBe("invalid thing at name: Invalid input: expected string, received number");
    expect(mini.message).toBe(classic.message);
    expect(mini.details).toEqual(classic.details);
  });
});

describe("parseJsonWith", () => {
  it("parses and validates JSON text", () => {
    expect(parseJsonWith(Schema, '{"name":"a","items":[{"size":3}]}', "thing").items[0]?.size).toBe(3);
  });

  it("reports malformed JSON with the given code and the parser's cause", () => {
    const err = thrownMagikError(() => parseJsonWith(Schema, '{"name":', "config.json", "InvalidBundle"));
    expect(err.code).toBe("InvalidBundle");
    expect(err.message).toMatch(/^config\.json is not valid JSON: /);
    expect(err.cause).toBeInstanceOf(SyntaxError);
  });

  it("reports schema errors naming the path", () => {
    const err = thrownMagikError(() => parseJsonWith(Schema, '{"name":"a","items":[{"size":1.5}]}', "thing"));
    expect(err.message).toMatch(/^invalid thing at items\.0\.size: /);
  });
});
