import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BundleBuilder, ImageStore } from "@magikrun/image";
import {
  hasRegistry,
  makeWasmArtifact,
  makeWasmCompatImage,
  pushFixture,
  startRegistry,
  type TestRegistry,
} from "@magikrun/image/test-support";
import { loadBundle } from "@magikrun/runtime-native/bundle";
import { wasmBundleFromOci } from "@magikrun/runtime-wasm/oci-bundle";
import type { WasmBundle } from "@magikrun/spec";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliResult, runCli } from "../test-support.ts";

// A wasm bundle made by `bundle create` (BundleBuilder.buildWasm) is also a runc-style bundle: its config.json
// reads back (wasmBundleFromOci) as the bundle.json beside it, and `magikrun run --bundle` runs it.

const CLANG = Bun.which("clang-14");

/**
 * No arguments: prints "hello" and /app/greeting.txt when there is one, exits 7. "spin": loops until stopped.
 * "alloc N": takes N MiB, exits 3 when memory runs out.
 */
const PROG_C = `#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "spin") == 0) {
    volatile unsigned long n = 0;
    for (;;) n++;
  }
  if (argc > 2 && strcmp(argv[1], "alloc") == 0) {
    int mib = atoi(argv[2]);
    for (int i = 0; i < mib; i++) {
      volatile char *p = malloc(1 << 20);
      if (!p) { printf("out of memory at %d MiB\\n", i); return 3; }
      p[0] = 1;
    }
    printf("allocated %d MiB\\n", mib);
    return 0;
  }
  printf("hello from wasm:");
  for (int i = 1; i < argc; i++) printf(" %s", argv[i]);
  printf("\\n");
  FILE *f = fopen("/app/greeting.txt", "r");
  char line[64];
  if (f && fgets(line, sizeof line, f)) printf("greeting: %s", line);
  return 7;
}
`;

describe.skipIf(!hasRegistry() || !CLANG)(
  "wasm bundles: bundle create, then run --bundle (needs docker-registry and clang-14)",
  () => {
    const work = mkdtempSync(join(tmpdir(), "magikrun-cli-bundle-wasm-"));
    const root = join(work, "root");
    let registry: TestRegistry;
    let artifact: string;
    let compat: string;
    let linked: string;
    let module: Uint8Array;

    const cli = (...args: string[]): Promise<CliResult> =>
      runCli(["--root", root, "--store", root, ...args], { DOCKER_CONFIG: join(work, "no-docker-config") });

    function leftovers(): string[] {
      return ["bundles", "rootfs"].flatMap((dir) => {
        try {
          return readdirSync(join(root, dir)).map((name) => `${dir}/${name}`);
        } catch {
          return [];
        }
      });
    }

    /** `bundle create`, returning the printed directory. */
    async function create(...args: string[]): Promise<string> {
      const made = await cli("bundle", "create", ...args);
      expect(made, made.stderr).toMatchObject({ code: 0 });
      return made.stdout.trim();
    }

    beforeAll(async () => {
      const source = join(work, "prog.c");
      const out = join(work, "prog.wasm");
      writeFileSync(source, PROG_C);
      execFileSync(CLANG!, ["--target=wasm32-wasi", "-O2", source, "-o", out], { stdio: "pipe" });
      module = new Uint8Array(readFileSync(out));
      registry = await startRegistry();
      await pushFixture(registry, "test/prog-wasm", "v1", makeWasmArtifact(module));
      const image = makeWasmCompatImage(module, {
        config: { Entrypoint: ["/app/hello.wasm"], Cmd: ["from-cmd"] },
        extra: [{ type: "file", path: "app/greeting.txt", data: "hi from the rootfs\n" }],
      });
      await pushFixture(registry, "test/prog-compat", "v1", image);
      // The entrypoint is an absolute symlink: it must resolve in the rootfs, never on the host.
      const symlinked = makeWasmCompatImage(module, {
        path: "opt/prog/prog.wasm",
        config: { Entrypoint: ["/app/hello.wasm"] },
        extra: [
          { type: "dir", path: "app" },
          { type: "symlink", path: "app/hello.wasm", target: "/opt/prog/prog.wasm" },
        ],
      });
      await pushFixture(registry, "test/prog-linked", "v1", symlinked);
      artifact = `${registry.host}/test/prog-wasm:v1`;
      compat = `${registry.host}/test/prog-compat:v1`;
      linked = `${registry.host}/test/prog-linked:v1`;
      for (const ref of [artifact, compat, linked]) {
        const pulled = await cli("image", "pull", ref);
        expect(pulled.code, pulled.stderr).toBe(0);
      }
    });
    afterAll(async () => {
      await registry?.stop();
      rmSync(work, { recursive: true, force: true });
    });

    it("reads config.json back as the WasmBundle buildWasm returned: module, args, env, limits, preopens", async () => {
      const store = await ImageStore.open(root);
      const builder = BundleBuilder.fromStore(store.blobs);
      const data = join(work, "data");
      const cache = join(work, "cache");
      mkdirSync(data, { recursive: true });
      mkdirSync(cache, { recursive: true });
      const preopens = [
        { guestPath: "/data", hostPath: data, readonly: true },
        { guestPath: "/var/cache", hostPath: cache },
      ];
      const cases: [string, string, Parameters<BundleBuilder["buildWasm"]>[2]][] = [
        ["artifact", artifact, { cmd: ["a", "b"], env: ["E=1"], fuel: 123_456 }],
        ["artifact-limits", artifact, { preopens, maxMemoryPages: 64, timeoutMs: 900 }],
        ["compat", compat, { env: ["E=2"], preopens }],
        ["linked", linked, { timeoutMs: 5000 }],
        [
          "compat-own-root",
          compat,
          { args: ["/app/hello.wasm", "x"], preopens: [{ guestPath: "/", hostPath: data }] },
        ],
      ];
      const comparable = (b: WasmBundle) => ({
        args: b.args,
        env: b.env,
        preopens: b.preopens,
        fuel: b.fuel,
        maxMemoryPages: b.maxMemoryPages,
        timeoutMs: b.timeoutMs,
      });
      for (const [name, ref, overrides] of cases) {
        const id = `roundtrip-${name}`;
        const built = await builder.buildWasm(await store.resolve(ref), id, overrides);
        try {
          const read = wasmBundleFromOci(loadBundle(built.path));
          expect(read, name).toBeDefined();
          expect(comparable(read!), name).toEqual(comparable(built));
          expect(new Uint8Array(readFileSync(read!.modulePath)), name).toEqual(module);
          expect(read!.path, name).toBe(built.path);
        } finally {
          builder.remove(id);
        }
      }
      expect(leftovers()).toEqual([]);
    });

    it("runs a wasm artifact's bundle with magikrun run, then bundle rm removes it", async () => {
      const dir = await create(artifact, "art", "--cmd", "a", "--cmd", "b");
      expect(dir).toBe(join(root, "bundles", "art"));
      const run = await cli("run", "--bundle", dir, "art");
      expect(run, run.stderr).toMatchObject({ code: 7, stdout: "hello from wasm: a b\n" });
      // bundle.json, for the API and `wasm run`, is still there beside config.json
      expect(readdirSync(dir).sort()).toEqual(["bundle.json", "config.json", "module.wasm", "rootfs"]);
      const rm = await cli("bundle", "rm", "art");
      expect(rm.code, rm.stderr).toBe(0);
      expect(leftovers()).toEqual([]);
    });

    it("runs a compat image's bundle with its rootfs as /, picked as wasm without --kind", async () => {
      const made = await cli("--json", "bundle", "create", compat, "cmp");
      expect(made.code, made.stderr).toBe(0);
      const { kind, path } = JSON.parse(made.stdout) as { kind: string; path: string };
      expect(kind).toBe("wasm");
      const run = await cli("run", "--bundle", path, "cmp");
      expect(run, run.stderr).toMatchObject({
        code: 7,
        stdout: "hello from wasm: from-cmd\ngreeting: hi from the rootfs\n",
      });
      const rm = await cli("bundle", "rm", "cmp");
      expect(rm.code, rm.stderr).toBe(0);
      expect(leftovers()).toEqual([]);
    });

    it("preopens a bind mount added to config.json at its destination, as runwasi sees mounts", async () => {
      const dir = await create(compat, "bound");
      const app = join(work, "host-app");
      mkdirSync(app, { recursive: true });
      writeFileSync(join(app, "greeting.txt"), "hi from the host\n");
      const file = join(dir, "config.json");
      const config = JSON.parse(readFileSync(file, "utf8"));
      config.mounts.push({ destination: "/app", type: "bind", source: app, options: ["rbind", "ro"] });
      writeFileSync(file, JSON.stringify(config));
      const run = await cli("run", "--bundle", dir, "bound");
      expect(run, run.stderr).toMatchObject({
        code: 7,
        stdout: "hello from wasm: from-cmd\ngreeting: hi from the host\n",
      });
      expect((await cli("bundle", "rm", "bound")).code).toBe(0);
      expect(leftovers()).toEqual([]);
    });

    it("enforces bundle create's --fuel, --timeout and --max-memory-pages in magikrun run", async () => {
      const fuel = await create(artifact, "fuel", "--fuel", "1000000", "--cmd", "spin");
      const starved = await cli("run", "--bundle", fuel, "fuel");
      expect(starved.code, starved.stderr).toBe(134);
      expect(starved.stderr).toContain("fuel-exhausted");

      const slow = await create(
        artifact,
        "slow",
        "--fuel",
        "100000000000",
        "--timeout",
        "300",
        "--cmd",
        "spin",
      );
      const timedOut = await cli("run", "--bundle", slow, "slow");
      expect(timedOut.code, timedOut.stderr).toBe(124);
      expect(timedOut.stderr).toContain("timeout");

      const small = await create(
        artifact,
        "small",
        "--max-memory-pages",
        "40",
        "--cmd",
        "alloc",
        "--cmd",
        "8",
      );
      const capped = await cli("run", "--bundle", small, "small");
      expect(capped, capped.stderr).toMatchObject({
        code: 3,
        stdout: expect.stringMatching(/^out of memory/),
      });
      // the same module with room enough
      const roomy = await create(artifact, "roomy", "--cmd", "alloc", "--cmd", "8");
      expect(await cli("run", "--bundle", roomy, "roomy")).toMatchObject({
        code: 0,
        stdout: "allocated 8 MiB\n",
      });

      const rm = await cli("bundle", "rm", "fuel", "slow", "small", "roomy");
      expect(rm.code, rm.stderr).toBe(0);
      expect(leftovers()).toEqual([]);
    });

    it("refuses wasm limits for a non-wasm bundle, creating nothing", async () => {
      const refused = await cli(
        "--json",
        "bundle",
        "create",
        "--kind",
        "oci",
        "--timeout",
        "5",
        compat,
        "nope",
      );
      expect(refused.code).toBe(2);
      expect(JSON.parse(refused.stderr)).toMatchObject({
        error: { code: "InvalidInput", details: { flag: "--timeout", kind: "oci" } },
      });
      const bad = await cli("--json", "bundle", "create", "--timeout", "soon", artifact, "nope");
      expect(JSON.parse(bad.stderr)).toMatchObject({
        error: { code: "InvalidInput", details: { flag: "--timeout", value: "soon" } },
      });
      expect(leftovers()).toEqual([]);
    });
  },
);
