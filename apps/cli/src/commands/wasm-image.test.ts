import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ImageStore } from "@magikrun/image";
import {
  hasRegistry,
  makeWasmArtifact,
  makeWasmCompatImage,
  pushFixture,
  startRegistry,
  type TestRegistry,
} from "@magikrun/image/test-support";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliResult, runCli } from "../test-support.ts";

const CLANG = Bun.which("clang-14");

/** Prints its arguments (argv[0] left out) and, when the image has one, /app/greeting.txt; exits EXIT_CODE. */
const HELLO_C = `#include <stdio.h>
#ifndef EXIT_CODE
#define EXIT_CODE 7
#endif
int main(int argc, char **argv) {
  printf("hello from wasm %d:", EXIT_CODE);
  for (int i = 1; i < argc; i++) printf(" %s", argv[i]);
  printf("\\n");
  FILE *f = fopen("/app/greeting.txt", "r");
  char line[64];
  if (f && fgets(line, sizeof line, f)) printf("greeting: %s", line);
  return EXIT_CODE;
}
`;

describe.skipIf(!hasRegistry() || !CLANG)(
  "magikrun wasm run IMAGE (needs docker-registry and clang-14)",
  () => {
    const work = mkdtempSync(join(tmpdir(), "magikrun-cli-wasm-image-"));
    const root = join(work, "root");
    let registry: TestRegistry;
    let hello7: Uint8Array;
    let hello8: Uint8Array;

    function compile(exitCode: number): Uint8Array {
      const source = join(work, "hello.c");
      const out = join(work, `hello-${exitCode}.wasm`);
      writeFileSync(source, HELLO_C);
      execFileSync(CLANG!, ["--target=wasm32-wasi", "-O2", `-DEXIT_CODE=${exitCode}`, source, "-o", out], {
        stdio: "pipe",
      });
      return new Uint8Array(readFileSync(out));
    }

    const cli = (...args: string[]): Promise<CliResult> =>
      runCli(["--root", root, "--store", root, ...args], { DOCKER_CONFIG: join(work, "no-docker-config") });

    /** Bundles and root filesystems of finished runs are removed. */
    function leftovers(): string[] {
      return ["bundles", "rootfs"].flatMap((dir) => {
        try {
          return readdirSync(join(root, dir)).map((name) => `${dir}/${name}`);
        } catch {
          return [];
        }
      });
    }

    beforeAll(async () => {
      hello7 = compile(7);
      hello8 = compile(8);
      registry = await startRegistry();
      await pushFixture(registry, "test/hello-wasm", "v1", makeWasmArtifact(hello7));
      const compat = makeWasmCompatImage(hello7, {
        config: { Entrypoint: ["/app/hello.wasm"], Cmd: ["from-cmd"] },
        extra: [{ type: "file", path: "app/greeting.txt", data: "hi from the rootfs\n" }],
      });
      await pushFixture(registry, "test/hello-compat", "v1", compat);
    });
    afterAll(async () => {
      await registry?.stop();
      rmSync(work, { recursive: true, force: true });
    });

    it("pulls a wasm artifact when missing, runs it with the given args, then uses the local copy until --pull", async () => {
      const ref = `${registry.host}/test/hello-wasm:v1`;
      const first = await cli("wasm", "run", ref, "a", "b");
      expect(first, first.stderr).toMatchObject({ code: 7, stdout: "hello from wasm 7: a b\n" });
      const store = await ImageStore.open(root);
      expect(store.list().map((r) => [r.reference, r.platform])).toEqual([[ref, "wasip1/wasm"]]);

      // The tag moves: a run without --pull keeps the stored image, --pull fetches the new one.
      await pushFixture(registry, "test/hello-wasm", "v1", makeWasmArtifact(hello8));
      const local = await cli("--json", "wasm", "run", ref);
      expect(local.code, local.stderr).toBe(7);
      const lines = local.stdout.trimEnd().split("\n");
      expect(lines[0]).toBe("hello from wasm 7:");
      expect(JSON.parse(lines.at(-1)!)).toMatchObject({
        exit: { code: 7, reason: "exited" },
        image: { reference: ref },
      });
      const pulled = await cli("wasm", "run", "--pull", ref, "c");
      expect(pulled, pulled.stderr).toMatchObject({ code: 8, stdout: "hello from wasm 8: c\n" });
      expect(leftovers()).toEqual([]);
    });

    it("runs an image whose entrypoint is a .wasm file, with its rootfs preopened as /", async () => {
      const ref = `${registry.host}/test/hello-compat:v1`;
      const run = await cli("wasm", "run", ref);
      expect(run, run.stderr).toMatchObject({
        code: 7,
        stdout: "hello from wasm 7: from-cmd\ngreeting: hi from the rootfs\n",
      });
      const args = await cli("wasm", "run", ref, "x", "y");
      expect(args.stdout).toBe("hello from wasm 7: x y\ngreeting: hi from the rootfs\n");
      expect(leftovers()).toEqual([]);
    });

    it("reports a missing image and --pull with a module file as errors", async () => {
      const missing = await cli("--json", "wasm", "run", `${registry.host}/test/nothing:v1`);
      expect(missing.code).toBe(1);
      expect(JSON.parse(missing.stderr)).toMatchObject({ error: { code: "ImageNotFound" } });
      const module = join(work, "hello-7.wasm");
      const pullModule = await cli("--json", "wasm", "run", "--pull", module);
      expect(pullModule.code).toBe(2);
      expect(JSON.parse(pullModule.stderr)).toMatchObject({
        error: { code: "InvalidInput", details: { option: "--pull", value: module } },
      });
      expect(leftovers()).toEqual([]);
    });
  },
);
