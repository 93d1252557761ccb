import { describe, expect, it } from "vitest";
import { instrumentModule } from "./instrument.ts";
import { wat } from "./testing/wat.ts";
import { WARM_UP_MODULE, WARM_UP_WAT } from "./warm-up.ts";

describe("warm-up module", () => {
  it("is WARM_UP_WAT as the current instrumenter rewrites it", async () => {
    const original = await wat(WARM_UP_WAT);
    const rewritten = instrumentModule(original, { maxMemoryPages: 1, meter: true }).bytes;
    // Debug names are dropped by the rewrite; the embedded bytes were made without them.
    expect(Buffer.from(WARM_UP_MODULE).toString("hex")).toBe(Buffer.from(rewritten).toString("hex"));
  });
});

describe("warm-up run", () => {
  it("exits 0 under the real WASI with fuel to spare", async () => {
    const { Wasi } = await import("./wasi/index.ts");
    const { openSync, closeSync } = await import("node:fs");
    const devNull = openSync("/dev/null", "w");
    try {
      const wasi = new Wasi({ args: ["warm-up"], env: [], preopens: [], stdout: devNull, stderr: devNull });
      const refuels: bigint[] = [];
      const imports = {
        ...wasi.imports,
        magikrun: {
          refuel: (current: bigint) => {
            refuels.push(current);
            return 1_000n;
          },
        },
      };
      const instance = new WebAssembly.Instance(new WebAssembly.Module(WARM_UP_MODULE), imports);
      expect(wasi.start(instance)).toBe(0);
      expect(refuels).toHaveLength(1);
    } finally {
      closeSync(devNull);
    }
  });
});
