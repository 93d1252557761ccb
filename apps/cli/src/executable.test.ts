/**
 * The shipped executable (apps/cli/dist/magikrun, built by scripts/setup.sh through apps/cli/scripts/build.ts):
 * one file with Bun inside, which must find the native launcher and reaper in dist/native beside itself, since
 * the modules compiled into it have no directory on disk.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { haveBusybox, makeBundle, makeStateRoot, uniqueId } from "@magikrun/runtime-native/test-support";
import { afterAll, describe, expect, it } from "vitest";

const BINARY = new URL("../dist/magikrun", import.meta.url).pathname;
const skip = !existsSync(BINARY)
  ? "apps/cli/dist/magikrun is not built (bun apps/cli/scripts/build.ts)"
  : process.getuid?.() !== 0
    ? "needs root"
    : !haveBusybox()
      ? "needs busybox-static"
      : "";

describe.skipIf(skip !== "")(`the magikrun executable${skip ? ` (skipped: ${skip})` : ""}`, () => {
  const state = makeStateRoot();
  afterAll(() => state.cleanup());

  it("runs a container in the foreground with the launcher beside it, and leaves no state", () => {
    const bundle = makeBundle(["/bin/sh", "-c", "echo from-the-binary; exit 7"], (c) => {
      c.process!.terminal = false;
    });
    try {
      const out = join(state.root, "run.out");
      const id = uniqueId("exe");
      // Output to a file: the container inherits the CLI's stdio.
      const r = Bun.spawnSync(
        [
          "sh",
          "-c",
          'exec "$@" >"$0" 2>&1 </dev/null',
          out,
          BINARY,
          "--root",
          state.root,
          "run",
          "-b",
          bundle.dir,
          id,
        ],
        // No MAGIKRUN_NATIVE_DIR: the executable must find dist/native by itself.
        { stdio: ["ignore", "ignore", "ignore"], env: { PATH: process.env.PATH ?? "/usr/bin:/bin" } },
      );
      expect(readFileSync(out, "utf8")).toBe("from-the-binary\n");
      expect(r.exitCode).toBe(7);
      expect(existsSync(join(state.root, id))).toBe(false);
    } finally {
      bundle.cleanup();
    }
  });

  it("reports its version and the runtime spec it implements", () => {
    const r = Bun.spawnSync([BINARY, "--version"], { stdio: ["ignore", "pipe", "pipe"] });
    expect(r.exitCode).toBe(0);
    expect(r.stdout.toString()).toMatch(/^magikrun version \d+\.\d+\.\d+\nspec: 1\.2\.0\n$/);
  });
});
