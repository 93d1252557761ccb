import { readFileSync } from "node:fs";
import type { Bundle, MagikErrorCode } from "@magikrun/spec";
import { rejectedMagikError } from "@magikrun/spec/test-support";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { WasmRuntime } from "./runtime.ts";
import { Scratch, WASI_STUB_URL } from "./testing/fixtures.ts";
import {
  countWat,
  growImportedWat,
  growWat,
  helloWat,
  REACTOR_WAT,
  RECURSE_WAT,
  SPIN_WAT,
  TRAP_WAT,
} from "./testing/modules.ts";

let scratch: Scratch;
let runtime: WasmRuntime;
let ids = 0;

beforeAll(() => {
  scratch = new Scratch();
  runtime = new WasmRuntime({ root: scratch.path("root"), wasiUrl: WASI_STUB_URL });
  runtime.warm();
});

afterEach(async () => {
  for (const c of await runtime.list()) await runtime.delete(c.id, { force: true });
});

afterAll(() => {
  runtime.close();
  scratch.cleanup();
});

/** create + start + wait, returning the id too. */
async function run(module: string | Uint8Array, extra: Parameters<Scratch["bundle"]>[1] = {}, rt = runtime) {
  const id = `c${ids++}`;
  const stdout = scratch.path(`${id}.out`);
  await rt.create({ id, bundle: await scratch.bundle(module, extra), stdio: { stdout: { path: stdout } } });
  await rt.start(id);
  const exit = await rt.wait(id);
  return { id, exit, stdout: () => readFileSync(stdout, "utf8") };
}

describe("WasmRuntime lifecycle", () => {
  it("creates, starts, waits and deletes, with the proc_exit code and the output", async () => {
    const id = "hello";
    const stdout = scratch.path("hello.out");
    const created = await runtime.create({
      id,
      bundle: await scratch.bundle(helloWat("hi there\n", 3)),
      stdio: { stdout: { path: stdout } },
    });
    expect(created).toMatchObject({ id, status: "created", pid: process.pid, bundle: scratch.dir });
    await runtime.start(id);
    expect((await runtime.state(id)).status).not.toBe("created");
    expect(await runtime.wait(id)).toMatchObject({ code: 3, reason: "exited" });
    const stopped = await runtime.state(id);
    expect(stopped.status).toBe("stopped");
    expect(stopped.pid).toBeUndefined();
    expect(stopped.annotations?.["run.magikrun.wasm.exit-code"]).toBe("3");
    expect(readFileSync(stdout, "utf8")).toBe("hi there\n");
    expect((await rejectedMagikError(runtime.start(id))).code).toBe("StartFailed");
    await runtime.delete(id);
    expect((await rejectedMagikError(runtime.state(id))).code).toBe("ContainerNotFound");
  });

  it("refuses duplicate and invalid ids and non-wasm bundles", async () => {
    const bundle = await scratch.bundle(helloWat("", 0));
    await runtime.create({ id: "dup", bundle });
    expect((await rejectedMagikError(runtime.create({ id: "dup", bundle }))).code).toBe(
      "ContainerAlreadyExists",
    );
    expect((await rejectedMagikError(runtime.create({ id: "../x", bundle }))).code).toBe(
      "InvalidContainerId",
    );
    const vm: Bundle = { kind: "microvm", path: "/x", rootfs: "/x", args: [], env: [], cwd: "/" };
    expect((await rejectedMagikError(runtime.create({ id: "vm", bundle: vm }))).code).toBe("InvalidBundle");
  });

  it("reports traps distinctly from exits", async () => {
    const trap = await run(TRAP_WAT);
    expect(trap.exit).toMatchObject({ code: 134, reason: "trap" });
    expect(trap.exit.message).toMatch(/unreachable/i);
    const overflow = await run(RECURSE_WAT);
    expect(overflow.exit).toMatchObject({ code: 134, reason: "trap" });
  });

  it("refuses at create a module importing what the runtime does not provide", async () => {
    const module = `(module (import "env" "nope" (func)) (memory (export "memory") 1) (func (export "_start") call 0))`;
    const err = await rejectedMagikError(
      runtime.create({ id: "unlinked", bundle: await scratch.bundle(module) }),
    );
    expect(err.code).toBe("CreateFailed");
    expect(err.details.missing).toEqual(["env.nope"]);
    expect(await runtime.list()).toEqual([]);
  });

  it("refuses a module without _start at create", async () => {
    const err = await rejectedMagikError(
      runtime.create({ id: "reactor", bundle: await scratch.bundle(REACTOR_WAT) }),
    );
    expect(err.code).toBe("CreateFailed");
    expect(err.details.exports).toEqual(["memory", "_initialize", "magikrun:fuel"]);
  });

  it("skips the rewrite on a second create, from memory and from another runtime's disk cache", async () => {
    const bundle = await scratch.bundle(helloWat("cached\n", 0));
    await runtime.create({ id: "first", bundle });
    await runtime.create({ id: "second", bundle });
    expect((await runtime.state("first")).annotations?.["run.magikrun.wasm.cache"]).toBe("rewrite");
    expect((await runtime.state("second")).annotations?.["run.magikrun.wasm.cache"]).toBe("memory");
    const other = new WasmRuntime({ root: scratch.path("root"), wasiUrl: WASI_STUB_URL, spareWorkers: 0 });
    try {
      await other.create({ id: "third", bundle });
      expect((await other.state("third")).annotations?.["run.magikrun.wasm.cache"]).toBe("disk");
      await other.delete("third");
    } finally {
      other.close();
    }
  });

  it("cancels a wait through its AbortSignal without touching the container", async () => {
    await runtime.create({ id: "waited", bundle: await scratch.bundle(helloWat("", 0)) });
    const controller = new AbortController();
    const waiting = runtime.wait("waited", { signal: controller.signal });
    controller.abort();
    expect((await rejectedMagikError(waiting)).code).toBe("Cancelled");
    expect((await runtime.state("waited")).status).toBe("created");
  });
});

describe("WasmRuntime limits", () => {
  it("stops a module that spends its fuel, with reason fuel-exhausted", async () => {
    const { exit } = await run(countWat(1_000_000), { fuel: 10_000 });
    expect(exit).toMatchObject({ code: 134, reason: "fuel-exhausted" });
    expect(runtime.exitStatus(`c${ids - 1}`)?.fuelConsumed).toBeGreaterThan(10_000);
  });

  it("charges the same fuel for the same run", async () => {
    const a = await run(countWat(50_000));
    const b = await run(countWat(50_000));
    expect(a.exit).toMatchObject({ code: 0, reason: "exited" });
    const fuelA = runtime.exitStatus(a.id)?.fuelConsumed;
    expect(fuelA).toBeGreaterThan(50_000 * 8);
    expect(runtime.exitStatus(b.id)?.fuelConsumed).toBe(fuelA);
  });

  it("makes memory.grow fail past the container's page limit, for defined and imported memories", async () => {
    expect((await run(growWat("1", 10), { maxMemoryPages: 4 })).exit.code).toBe(1);
    expect((await run(growWat("1", 3), { maxMemoryPages: 4 })).exit.code).toBe(0);
    expect((await run(growWat("1 100", 10), { maxMemoryPages: 16 })).exit.code).toBe(0);
    expect((await run(growImportedWat("1 100", 10), { maxMemoryPages: 4 })).exit.code).toBe(1);
    expect((await run(growImportedWat("1 100", 3), { maxMemoryPages: 4 })).exit.code).toBe(0);
  });

  it("refuses at create a memory whose minimum is over the limit, and a limit over MAX_WASM_MEMORY_PAGES", async () => {
    const over = await rejectedMagikError(
      runtime.create({ id: "big", bundle: await scratch.bundle(growWat("8", 0), { maxMemoryPages: 4 }) }),
    );
    expect(over.code).toBe("ResourceExhausted");
    expect(over.details).toMatchObject({ max: 4, value: 8 });
    const capped = new WasmRuntime({
      root: scratch.path("root"),
      wasiUrl: WASI_STUB_URL,
      limits: { MAX_WASM_MEMORY_PAGES: 64 },
    });
    try {
      const bundle = await scratch.bundle(growWat("1", 0), { maxMemoryPages: 65 });
      expect((await rejectedMagikError(capped.create({ id: "x", bundle }))).code).toBe("InvalidInput");
      expect(
        (await rejectedMagikError(capped.create({ id: "y", bundle: await scratch.bundle(growWat("65", 0)) })))
          .code,
      ).toBe("ResourceExhausted");
    } finally {
      capped.close();
    }
  });

  it("ends a run at its wall-clock timeout", async () => {
    const { exit } = await run(SPIN_WAT, { timeoutMs: 150, fuel: 1e15 });
    expect(exit).toMatchObject({ code: 124, reason: "timeout" });
  });
});

describe("WasmRuntime kill", () => {
  it.each([
    ["SIGTERM", 143],
    ["KILL", 137],
    [9, 137],
  ] as const)("stops a tight loop with %s through the interrupt", async (signal, code) => {
    const id = `spin-${signal}`;
    await runtime.create({ id, bundle: await scratch.bundle(SPIN_WAT, { fuel: 1e15 }) });
    await runtime.start(id);
    await runtime.kill(id, signal);
    // "signaled" (not "killed") means the guest itself reached a check point and stopped: no terminate needed.
    expect(await runtime.wait(id)).toMatchObject({ code, reason: "signaled" });
    expect((await rejectedMagikError(runtime.kill(id, "SIGTERM"))).code).toBe("SignalFailed");
  });

  it("ignores signals whose default action is to ignore, and refuses unknown ones", async () => {
    await runtime.create({ id: "ign", bundle: await scratch.bundle(SPIN_WAT, { fuel: 1e15 }) });
    await runtime.start("ign");
    await runtime.kill("ign", "SIGWINCH");
    expect((await runtime.state("ign")).status).toBe("running");
    expect((await rejectedMagikError(runtime.kill("ign", "SIGNOPE"))).code).toBe("InvalidInput");
    expect((await rejectedMagikError(runtime.delete("ign"))).code).toBe("DeleteFailed");
    await runtime.delete("ign", { force: true });
    expect(await runtime.list()).toEqual([]);
  });

  it("kills a created container that never started", async () => {
    await runtime.create({ id: "idle", bundle: await scratch.bundle(helloWat("never\n", 0)) });
    await runtime.kill("idle", "SIGTERM");
    expect(await runtime.wait("idle")).toMatchObject({ code: 143, reason: "signaled", signal: "SIGTERM" });
  });

  it("runs instances concurrently, each in its own store", async () => {
    const spinners = ["s1", "s2"];
    for (const id of spinners)
      await runtime.create({ id, bundle: await scratch.bundle(SPIN_WAT, { fuel: 1e15 }) });
    for (const id of spinners) await runtime.start(id);
    const finite = await Promise.all([4, 5, 6].map((code) => run(helloWat(`out ${code}\n`, code))));
    expect(finite.map((r) => r.exit.code)).toEqual([4, 5, 6]);
    expect(finite.map((r) => r.stdout())).toEqual(["out 4\n", "out 5\n", "out 6\n"]);
    for (const id of spinners) expect((await runtime.state(id)).status).toBe("running");
    await Promise.all(spinners.map((id) => runtime.kill(id, "SIGKILL")));
    for (const id of spinners) expect((await runtime.wait(id)).reason).toBe("signaled");
  });
});

describe("WasmRuntime malformed modules", () => {
  it("refuses truncated, invalid, oversized and missing modules clearly, and keeps working", async () => {
    const good = await scratch.bundle(helloWat("still fine\n", 0));
    const bytes = readFileSync(good.modulePath);
    const cases: [string, Promise<unknown>, MagikErrorCode][] = [
      [
        "truncated",
        runtime.create({ id: "t", bundle: await scratch.bundle(bytes.subarray(0, bytes.length - 5)) }),
        "InvalidBundle",
      ],
      [
        "invalid",
        runtime.create({
          id: "i",
          bundle: await scratch.bundle(new TextEncoder().encode("#!/bin/sh\necho hi\n")),
        }),
        "InvalidBundle",
      ],
      [
        "missing",
        runtime.create({ id: "m", bundle: { ...good, modulePath: scratch.path("nope.wasm") } }),
        "InvalidBundle",
      ],
    ];
    for (const [name, attempt, code] of cases) {
      const err = await rejectedMagikError(attempt);
      expect(err.code, name).toBe(code);
      expect(err.details.path, name).toMatch(/\.wasm$/);
    }
    const small = new WasmRuntime({
      root: scratch.path("root"),
      wasiUrl: WASI_STUB_URL,
      limits: { MAX_WASM_MODULE_SIZE: 64 },
      spareWorkers: 0,
    });
    try {
      const err = await rejectedMagikError(small.create({ id: "o", bundle: good }));
      expect(err.code).toBe("ResourceExhausted");
      expect(err.details).toMatchObject({ limit: "MAX_WASM_MODULE_SIZE", max: 64, value: bytes.length });
    } finally {
      small.close();
    }
    expect(await runtime.list()).toEqual([]);
    const after = await run(helloWat("still fine\n", 0));
    expect(after.exit).toMatchObject({ code: 0, reason: "exited" });
    expect(after.stdout()).toBe("still fine\n");
  });
});
