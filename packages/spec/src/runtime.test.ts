import { describe, expect, it } from "vitest";
import { type BundleKind, type OciRuntime, RuntimeRegistry, validateContainerId } from "./runtime.ts";
import type { ContainerState } from "./state.ts";
import { thrownMagikError } from "./test-support.ts";

/** A backend that only answers to selection: the registry never calls into it. */
function backend(name: string, bundleKinds: BundleKind[]): OciRuntime {
  const unused = (): never => {
    throw new Error(`${name} was called`);
  };
  return {
    name,
    bundleKinds,
    create: unused,
    start: unused,
    state: unused,
    kill: unused,
    delete: unused,
    list: async (): Promise<ContainerState[]> => [],
  };
}

describe("RuntimeRegistry", () => {
  const native = backend("native", ["oci"]);
  const wasm = backend("wasm", ["wasm"]);
  const krun = backend("krun", ["microvm", "oci"]);

  it("selects a backend by bundle kind, the first registered winning", () => {
    const registry = new RuntimeRegistry().register(native).register(wasm).register(krun);
    expect(registry.forBundle({ kind: "oci" })).toBe(native);
    expect(registry.forBundle({ kind: "wasm" })).toBe(wasm);
    expect(registry.forBundle({ kind: "microvm" })).toBe(krun);
    expect(registry.names()).toEqual(["native", "wasm", "krun"]);
  });

  it("selects a backend by name", () => {
    const registry = new RuntimeRegistry().register(native).register(krun);
    expect(registry.byName("krun")).toBe(krun);
  });

  it("replaces a backend registered again under the same name", () => {
    const other = backend("native", ["oci", "wasm"]);
    const registry = new RuntimeRegistry().register(native).register(other);
    expect(registry.names()).toEqual(["native"]);
    expect(registry.forBundle({ kind: "wasm" })).toBe(other);
  });

  it("reports RuntimeUnavailable with what is available", () => {
    const registry = new RuntimeRegistry().register(native);
    const byName = thrownMagikError(() => registry.byName("krun"));
    expect(byName.code).toBe("RuntimeUnavailable");
    expect(byName.details).toEqual({ runtime: "krun", available: ["native"] });
    const byKind = thrownMagikError(() => registry.forBundle({ kind: "wasm" }));
    expect(byKind.code).toBe("RuntimeUnavailable");
    expect(byKind.details).toEqual({ kind: "wasm", available: ["native"] });
    expect(
      thrownMagikError(() => new RuntimeRegistry().forBundle({ kind: "oci" })).details.available,
    ).toEqual([]);
  });
});

describe("validateContainerId", () => {
  it.each(["a", "abc", "A1", "my-container_1.2", "x+y", "_private", "0", "a".repeat(128)])(
    "accepts %j",
    (id) => {
      expect(validateContainerId(id)).toBe(id);
    },
  );

  it.each([
    ["empty", ""],
    ["dot", "."],
    ["dot-dot", ".."],
    ["a leading dot", ".hidden"],
    ["a leading dash", "-rf"],
    ["a slash", "a/b"],
    ["traversal", "../etc"],
    ["a space", "a b"],
    ["a NUL byte", "a\0b"],
    ["a newline", "a\n"],
    ["non-ASCII", "café"],
    ["129 characters", "a".repeat(129)],
    ["a number", 42],
    ["undefined", undefined],
  ])("refuses %s with InvalidContainerId naming the id", (_name, id) => {
    const err = thrownMagikError(() => validateContainerId(id));
    expect(err.code).toBe("InvalidContainerId");
    expect(err.details.id).toBe(id);
  });

  it("honours a custom maximum length", () => {
    expect(validateContainerId("abcd", 4)).toBe("abcd");
    expect(thrownMagikError(() => validateContainerId("abcde", 4)).details.maxLength).toBe(4);
  });
});
