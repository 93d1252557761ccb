import { mkdirSync, readFileSync } from "node:fs";
import type { WasmBundle } from "@magikrun/spec";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { WasmRuntime } from "./runtime.ts";
import { compileC } from "./testing/clang.ts";
import { Scratch } from "./testing/fixtures.ts";

/** C programs on the real WASI layer (the default of WasmRuntime), end to end through the OCI lifecycle. */
let scratch: Scratch;
let runtime: WasmRuntime;
let hello: string;
let cpu: string;

beforeAll(() => {
  scratch = new Scratch();
  runtime = new WasmRuntime({ root: scratch.path("root") });
  runtime.warm();
  hello = compileC("hello.c", scratch.path("hello.wasm"));
  cpu = compileC("cpu.c", scratch.path("cpu.wasm"));
});

afterEach(async () => {
  for (const c of await runtime.list()) await runtime.delete(c.id, { force: true });
});

afterAll(() => {
  runtime.close();
  scratch.cleanup();
});

describe("C programs on WASI", () => {
  it("sees its args, env and preopened dir, and exits with main's return value", async () => {
    const data = scratch.path("data");
    mkdirSync(data);
    const stdout = scratch.path("hello.out");
    await runtime.create({
      id: "hello",
      bundle: {
        kind: "wasm",
        path: scratch.dir,
        modulePath: hello,
        args: ["hello", "7"],
        env: ["GREETING=hi"],
        preopens: [{ guestPath: "/data", hostPath: data }],
      },
      stdio: { stdout: { path: stdout } },
    });
    await runtime.start("hello");
    expect(await runtime.wait("hello")).toMatchObject({ code: 7, reason: "exited" });
    expect(readFileSync(stdout, "utf8")).toBe("hello from wasm, 2 args: hello 7\nGREETING=hi\n");
    expect(readFileSync(`${data}/out.txt`, "utf8")).toBe("written by the guest\n");
  });

  it("bounds a CPU-bound program by fuel and stops it on kill", async () => {
    const bundle: WasmBundle = {
      kind: "wasm",
      path: scratch.dir,
      modulePath: cpu,
      args: [],
      env: [],
      preopens: [],
    };
    await runtime.create({ id: "metered", bundle: { ...bundle, args: ["cpu", "1"], fuel: 1_000_000 } });
    await runtime.start("metered");
    expect(await runtime.wait("metered")).toMatchObject({ reason: "fuel-exhausted" });
    await runtime.create({ id: "long", bundle: { ...bundle, args: ["cpu", "100000"], fuel: 1e15 } });
    await runtime.start("long");
    await runtime.kill("long", "SIGTERM");
    expect(await runtime.wait("long")).toMatchObject({ code: 143, reason: "signaled" });
  });
});
