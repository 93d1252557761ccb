import { isMagikError } from "@magikrun/spec";
import { describe, expect, it } from "vitest";
import { instrumentModule } from "./instrument.ts";
import { FUEL_EXPORT } from "./protocol.ts";
import { wat } from "./testing/wat.ts";

interface Metered {
  exports: WebAssembly.Instance["exports"];
  refuels: bigint[];
  fuelLeft: () => bigint;
}

/** Instantiates a metered module on this thread with a refuel that grants `slice` each time. */
function instantiate(
  bytes: Uint8Array,
  slice = 1_000n,
  imports: Record<string, Record<string, unknown>> = {},
): Metered {
  const out = instrumentModule(bytes, { maxMemoryPages: 16, meter: true });
  expect(WebAssembly.validate(out.bytes)).toBe(true);
  const refuels: bigint[] = [];
  const instance = new WebAssembly.Instance(new WebAssembly.Module(out.bytes), {
    ...imports,
    magikrun: {
      refuel: (current: bigint) => {
        refuels.push(current);
        return slice;
      },
    },
  } as ConstructorParameters<typeof WebAssembly.Instance>[1]);
  const counter = instance.exports[FUEL_EXPORT] as WebAssembly.Global;
  return { exports: instance.exports, refuels, fuelLeft: () => counter.value as bigint };
}

function caught(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error("expected an error");
}

const LOOP = `(module
  (func (export "sum") (param $n i32) (result i32) (local $i i32) (local $acc i32)
    (loop $l
      (local.set $acc (i32.add (local.get $acc) (local.get $i)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
    (local.get $acc)))`;

describe("instrumentModule", () => {
  it("keeps results and charges a fixed cost per function entry and loop iteration", async () => {
    const { exports, refuels, fuelLeft } = instantiate(await wat(LOOP), 1_000_000n);
    expect((exports.sum as (n: number) => number)(10)).toBe(45);
    // The first check point finds the counter at zero and asks for the first slice.
    expect(refuels).toEqual([-3n]);
    const afterTen = 1_000_000n - fuelLeft();
    expect((exports.sum as (n: number) => number)(20)).toBe(190);
    const afterThirty = 1_000_000n - fuelLeft();
    // Loop body: 13 instructions (its end included) per iteration, charged for four iterations at a time
    // (the loop is small: four copies of its body); entry: loop, local.get, end, charged before the first slice.
    expect(afterTen).toBe(13n * 12n);
    expect(afterThirty - afterTen).toBe(3n + 13n * 20n);
  });

  it("charges an unrolled loop per group of iterations, a partial group as a whole, the same every run", async () => {
    const { exports, fuelLeft } = instantiate(await wat(LOOP), 1_000_000n);
    const sum = exports.sum as (n: number) => number;
    const spent = (n: number, expected: number) => {
      const before = fuelLeft();
      expect(sum(n)).toBe(expected);
      return before - fuelLeft();
    };
    spent(2, 1);
    expect(spent(11, 55)).toBe(3n + 13n * 12n);
    expect(spent(11, 55)).toBe(3n + 13n * 12n);
    expect(spent(1, 0)).toBe(3n + 13n * 4n);
    expect(spent(4, 6)).toBe(3n + 13n * 4n);
    expect(spent(5, 10)).toBe(3n + 13n * 8n);
    expect(spent(12, 66)).toBe(3n + 13n * 12n);
  });

  it("keeps loops with a call charged per iteration, not unrolled", async () => {
    const source = `(module
      (func $id (param i32) (result i32) (local.get 0))
      (func (export "sum") (param $n i32) (result i32) (local $i i32) (local $acc i32)
        (loop $l
          (local.set $acc (i32.add (local.get $acc) (call $id (local.get $i))))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
        (local.get $acc)))`;
    const { exports, fuelLeft } = instantiate(await wat(source), 1_000_000n);
    const sum = exports.sum as (n: number) => number;
    sum(2);
    const before = fuelLeft();
    expect(sum(11)).toBe(55);
    // Entry 3, loop body 14 per iteration, $id's entry 2 (local.get, end) per call.
    expect(before - fuelLeft()).toBe(3n + 14n * 11n + 2n * 11n);
  });

  it("keeps continue, break and return right in every copy of an unrolled loop", async () => {
    // 28 instructions in f's loop (two copies), 16 in h's (four copies).
    const source = `(module
      (func (export "h") (param $n i32) (result i32) (local $i i32)
        (block $out
          (loop $l
            (br_if $l (i32.and (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const 1)))
            (br_if $out (i32.eq (local.get $i) (local.get $n)))
            (br_if $l (i32.lt_u (local.get $i) (i32.const 1000)))))
        (i32.mul (local.get $i) (i32.const 3)))
      (func (export "f") (param $n i32) (result i32) (local $i i32) (local $acc i32)
        (block $out
          (loop $l
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (if (i32.eqz (i32.rem_u (local.get $i) (i32.const 3))) (then (br $l)))
            (local.set $acc (i32.add (local.get $acc) (local.get $i)))
            (br_if $out (i32.gt_u (local.get $acc) (i32.const 5000)))
            (if (i32.eq (local.get $i) (i32.sub (local.get $n) (i32.const 1000))) (then (return (i32.const -7))))
            (br_if $l (i32.lt_u (local.get $i) (local.get $n)))))
        (i32.add (local.get $acc) (i32.mul (local.get $i) (i32.const 100000)))))`;
    const bytes = await wat(source);
    const plain = new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports;
    const results = (exports: typeof plain) =>
      [0, 1, 2, 3, 4, 5, 6, 7, 50, 51, 100, 101, 1020, 1021, 5000].flatMap((n) =>
        ["f", "h"].map((name) => (exports[name] as (n: number) => number)(n)),
      );
    const expected = results(plain);
    expect(new Set(expected).size).toBeGreaterThan(10);
    expect(expected).toContain(-7);
    for (const slice of [1n, 2n, 7n, 1_000_000n])
      expect(results(instantiate(bytes, slice).exports), `slice ${slice}`).toEqual(expected);
  });

  it("calls refuel each time a slice is spent and stops when it throws", async () => {
    const { exports, refuels } = instantiate(await wat(LOOP), 100n);
    expect((exports.sum as (n: number) => number)(1000)).toBe(499500);
    expect(refuels.length).toBeGreaterThan(100);
    expect(refuels.every((f) => f < 0n)).toBe(true);
    const out = instrumentModule(await wat(LOOP), { maxMemoryPages: 1, meter: true });
    const instance = new WebAssembly.Instance(new WebAssembly.Module(out.bytes), {
      magikrun: {
        refuel: () => {
          throw new Error("out of fuel");
        },
      },
    });
    expect(() => (instance.exports.sum as (n: number) => number)(1e9)).toThrow("out of fuel");
  });

  it("keeps branches across nested loops right when the loops are wrapped, at any slice size", async () => {
    // Nested loops with results, br_if out of two loops, br_table across them, and a return from inside.
    const source = `(module
      (func (export "f") (param $n i32) (result i32) (local $i i32) (local $j i32) (local $acc i32)
        (block $done
          (loop $outer
            (local.set $j (i32.const 0))
            (block $skip
              (loop $inner
                (local.set $acc (i32.add (local.get $acc) (i32.mul (local.get $i) (local.get $j))))
                (br_if $done (i32.gt_u (local.get $acc) (i32.const 100000)))
                (if (i32.eq (local.get $acc) (i32.const 77)) (then (return (i32.const -1))))
                (local.set $j (i32.add (local.get $j) (i32.const 1)))
                (br_table $inner $skip $done $inner
                  (i32.rem_u (i32.add (local.get $i) (local.get $j)) (i32.const 4)))))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br_if $outer (i32.lt_u (local.get $i) (local.get $n)))))
        (i32.add (local.get $acc) (i32.mul (local.get $i) (i32.const 1000))))
      (func (export "g") (param $n i32) (result i32) (local $k i32)
        (i32.add (i32.const 1)
          (loop $l (result i32)
            (local.set $k (i32.add (local.get $k) (i32.const 3)))
            (br_if $l (i32.lt_u (local.get $k) (local.get $n)))
            (local.get $k)))))`;
    const bytes = await wat(source);
    const plain = new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports;
    const results = (exports: typeof plain) =>
      [0, 1, 5, 40, 300].flatMap((n) =>
        ["f", "g"].map((name) => (exports[name] as (n: number) => number)(n)),
      );
    const expected = results(plain);
    expect(new Set(expected).size).toBeGreaterThan(4);
    for (const slice of [1n, 7n, 1_000_000n])
      expect(results(instantiate(bytes, slice).exports), `slice ${slice}`).toEqual(expected);
  });

  it("remaps every function reference moved by the added import", async () => {
    const source = `(module
      (import "env" "twice" (func $twice (param i32) (result i32)))
      (type $unary (func (param i32) (result i32)))
      (table 3 funcref)
      (elem (i32.const 0) $inc $dec)
      (elem declare func $inc)
      (global $ref (mut funcref) (ref.func $dec))
      (global $started (mut i32) (i32.const 0))
      (func $inc (type $unary) (i32.add (local.get 0) (i32.const 1)))
      (func $dec (type $unary) (i32.sub (local.get 0) (i32.const 1)))
      (func $tail (param i32) (result i32) (return_call $inc (local.get 0)))
      (func (export "viaTable") (param i32 i32) (result i32)
        (call_indirect (type $unary) (local.get 1) (local.get 0)))
      (func (export "viaImport") (param i32) (result i32) (call $twice (call $inc (local.get 0))))
      (func (export "viaTail") (param i32) (result i32) (call $tail (local.get 0)))
      (func (export "viaGlobal") (param i32) (result i32)
        (table.set (i32.const 2) (global.get $ref))
        (call_indirect (type $unary) (local.get 0) (i32.const 2)))
      (func (export "started") (result i32) (global.get $started))
      (func $init (global.set $started (i32.const 7)))
      (start $init))`;
    const { exports } = instantiate(await wat(source), 1_000n, { env: { twice: (x: number) => 2 * x } });
    const call = (name: string, ...args: number[]) => (exports[name] as (...a: number[]) => number)(...args);
    expect(call("viaTable", 0, 10)).toBe(11);
    expect(call("viaTable", 1, 10)).toBe(9);
    expect(call("viaImport", 4)).toBe(10);
    expect(call("viaTail", 4)).toBe(5);
    expect(call("viaGlobal", 4)).toBe(3);
    expect(call("started")).toBe(7);
  });

  it("decodes SIMD, bulk memory, atomics and multi-value code", async () => {
    const source = `(module
      (memory 1 1 shared)
      (func $pair (result i32 i32) (i32.const 2) (i32.const 3))
      (func (export "run") (result i32) (local $v v128)
        (memory.fill (i32.const 0) (i32.const 5) (i32.const 16))
        (memory.copy (i32.const 32) (i32.const 0) (i32.const 16))
        (local.set $v (i8x16.shuffle 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15
          (v128.load (i32.const 32)) (v128.const i32x4 1 2 3 4)))
        (v128.store offset=64 (i32.const 0) (local.get $v))
        (drop (i32.atomic.rmw.add (i32.const 128) (i32.const 9)))
        (atomic.fence)
        (i32.add (i32.add (i8x16.extract_lane_u 3 (local.get $v)) (i32.atomic.load (i32.const 128)))
          (i32.mul (call $pair)))))`;
    const { exports } = instantiate(await wat(source));
    expect((exports.run as () => number)()).toBe(5 + 9 + 6);
  });

  it("caps defined and imported memories at the limit", async () => {
    const source = `(module
      (import "env" "mem" (memory 1 100))
      (memory (export "own") 2)
      (func (export "grow") (param i32) (result i32) (memory.grow 1 (local.get 0))))`;
    const out = instrumentModule(await wat(source), { maxMemoryPages: 8, meter: false });
    expect(out.importedMemories).toEqual([
      { module: "env", name: "mem", type: { minPages: 1, maxPages: 8, shared: false } },
    ]);
    expect(WebAssembly.Module.imports(new WebAssembly.Module(out.bytes)).map((i) => i.module)).toEqual([
      "env",
    ]);
    const instance = new WebAssembly.Instance(new WebAssembly.Module(out.bytes), {
      env: { mem: new WebAssembly.Memory({ initial: 1, maximum: 8 }) },
    });
    const grow = instance.exports.grow as (pages: number) => number;
    expect(grow(6)).toBe(2);
    expect(grow(1)).toBe(-1);
  });

  it("refuses memories whose minimum is over the limit", async () => {
    const bytes = await wat(`(module (memory 10))`);
    const refused = caught(() => instrumentModule(bytes, { maxMemoryPages: 4, meter: true }));
    expect(isMagikError(refused, "ResourceExhausted")).toBe(true);
    expect((refused as { details: unknown }).details).toMatchObject({ max: 4, value: 10, memoryIndex: 0 });
  });

  it("refuses the reserved import namespace and export name", async () => {
    const imports = await wat(`(module (import "magikrun" "refuel" (func (param i64) (result i64))))`);
    expect(
      isMagikError(
        caught(() => instrumentModule(imports, { maxMemoryPages: 1, meter: true })),
        "InvalidBundle",
      ),
    ).toBe(true);
    const exports = await wat(`(module (global (export "${FUEL_EXPORT}") i32 (i32.const 0)))`);
    expect(
      isMagikError(
        caught(() => instrumentModule(exports, { maxMemoryPages: 1, meter: true })),
        "InvalidBundle",
      ),
    ).toBe(true);
  });

  it("refuses exception handling, which could catch the host's interrupts", async () => {
    const bytes = await wat(`(module (tag $e) (func (export "f") (try (do (throw $e)) (catch_all))))`, {
      exceptions: true,
    });
    expect(
      isMagikError(
        caught(() => instrumentModule(bytes, { maxMemoryPages: 1, meter: true })),
        "NotSupported",
      ),
    ).toBe(true);
  });

  it("reports truncated and foreign input as malformed with the offset", async () => {
    const bytes = await wat(LOOP);
    for (const cut of [4, 12, bytes.length - 3]) {
      const err = caught(() => instrumentModule(bytes.subarray(0, cut), { maxMemoryPages: 1, meter: true }));
      expect(isMagikError(err, "InvalidBundle")).toBe(true);
      expect((err as { details: { offset?: number } }).details.offset).toBeTypeOf("number");
    }
    const elf = new Uint8Array([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]);
    expect(
      isMagikError(
        caught(() => instrumentModule(elf, { maxMemoryPages: 1, meter: true })),
        "InvalidBundle",
      ),
    ).toBe(true);
  });

  it("adds type, import, global and export sections to a module that has none", async () => {
    const out = instrumentModule(await wat(`(module (func))`), { maxMemoryPages: 1, meter: true });
    const module = new WebAssembly.Module(out.bytes);
    expect(WebAssembly.Module.imports(module)).toEqual([
      { module: "magikrun", name: "refuel", kind: "function" },
    ]);
    expect(WebAssembly.Module.exports(module)).toEqual([{ name: FUEL_EXPORT, kind: "global" }]);
    expect(out.checkPoints).toBe(1);
  });
});
