#!/usr/bin/env bun
/**
 * Builds the shipped `magikrun` executable: apps/cli/dist/magikrun, one file made by `bun build --compile
 * --bytecode` (Bun's runtime, the CLI and its packages, pre-parsed), with the native launcher and the reaper
 * program copied to dist/native/, where the executable looks for them. This is the binary to give containerd
 * (`BinaryName`) or podman (`--runtime`): it starts in about half the time of `bun apps/cli/src/main.ts`, which
 * transpiles and links a few hundred modules on every call.
 *
 * Usage: bun apps/cli/scripts/build.ts [--outdir DIR]
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { buildLauncher } from "@magikrun/runtime-native/launcher-build";

const at = process.argv.indexOf("--outdir");
const outdir =
  at > 0 && process.argv[at + 1] ? process.argv[at + 1]! : new URL("../dist", import.meta.url).pathname;
const entry = new URL("../src/main.ts", import.meta.url).pathname;
const nativeSource = new URL("../../../packages/runtime-native/native", import.meta.url).pathname;

function fail(message: string): never {
  console.error(`[cli] ${message}`);
  process.exit(1);
}

const launcher = buildLauncher();
if (!launcher.ok) fail(`the native launcher was not built: ${launcher.reason}`);

mkdirSync(join(outdir, "native"), { recursive: true });
const binary = join(outdir, "magikrun");
const tmp = `${binary}.${process.pid}.tmp`;
const built = Bun.spawnSync(
  [
    "bun",
    "build",
    entry,
    "--compile",
    "--bytecode",
    "--splitting",
    "--format=esm",
    "--minify",
    "--outfile",
    tmp,
  ],
  { stdio: ["ignore", "ignore", "pipe"] },
);
if (built.exitCode !== 0) {
  rmSync(tmp, { force: true });
  fail(`bun build --compile failed: ${built.stderr.toString().trim()}`);
}
// Each file is put in place by rename, so a running magikrun never sees half of one.
for (const name of ["launcher.so", "magikrun-reaper"]) {
  const source = join(nativeSource, name);
  if (!existsSync(source)) fail(`${source} is missing after the launcher build`);
  const target = join(outdir, "native", name);
  copyFileSync(source, `${target}.tmp`);
  chmodSync(`${target}.tmp`, 0o755);
  renameSync(`${target}.tmp`, target);
}
renameSync(tmp, binary);
console.error(`[cli] built ${binary}`);
