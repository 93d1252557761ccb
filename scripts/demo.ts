/**
 * The demo: what magikrun does today, end to end, with no network beyond 127.0.0.1.
 *   1. an image built from Debian's busybox-static is served by a real registry (Debian's docker-registry),
 *   2. `magikrun image pull` fetches it (verified, deduplicated, with progress),
 *   3. `magikrun bundle create` + `magikrun run` run it as a native Linux container with cgroup limits,
 *   4. `magikrun wasm run` runs WebAssembly modules under fuel limits.
 * Everything lives in a temporary store and state dir that are removed at the end.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildBusyboxImage, pushFixture, startRegistry } from "@magikrun/image/test-support";

const MAIN = new URL("../apps/cli/src/main.ts", import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), "magikrun-demo-"));
const store = join(work, "store");
const state = join(work, "state");
let failures = 0;

function heading(text: string): void {
  console.log(`\n\x1b[1m== ${text}\x1b[0m`);
}

/**
 * Runs `magikrun ARGS`, echoing the command line as a user would type it. Output goes straight to the terminal:
 * like runc, `create` hands its stdio to the container, so a captured pipe would stay open as long as it runs.
 */
async function magikrun(args: string[], expectCode = 0): Promise<void> {
  await invoke(args, expectCode, "inherit");
}

/** Same, returning what the command printed (for `bundle create`, which prints the bundle path). */
async function magikrunOutput(args: string[]): Promise<string> {
  return invoke(args, 0, "pipe");
}

async function invoke(args: string[], expectCode: number, stdout: "inherit" | "pipe"): Promise<string> {
  const shown = args.map((a) => (/[\s$'"|;()]/.test(a) ? `'${a}'` : a)).join(" ");
  console.log(`\x1b[36m$ magikrun ${shown}\x1b[0m`);
  const proc = Bun.spawn(["bun", MAIN, "--store", store, "--root", state, ...args], {
    stdin: "ignore",
    stdout,
    stderr: "inherit",
  });
  const out = stdout === "pipe" ? await new Response(proc.stdout as ReadableStream).text() : "";
  const code = await proc.exited;
  process.stdout.write(out);
  if (code !== expectCode) {
    console.log(`\x1b[31m(exit ${code}, expected ${expectCode})\x1b[0m`);
    failures++;
  } else if (code !== 0) {
    console.log(`(exit ${code}, as expected)`);
  }
  return out.trim();
}

function wat2wasm(name: string, text: string): string {
  const watFile = join(work, `${name}.wat`);
  const wasmFile = join(work, `${name}.wasm`);
  writeFileSync(watFile, text);
  const res = Bun.spawnSync(["wat2wasm", watFile, "-o", wasmFile], { stderr: "pipe" });
  if (res.exitCode !== 0) throw new Error(`wat2wasm failed: ${res.stderr.toString()}`);
  return wasmFile;
}

const HELLO_WAT = `(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "hello from WebAssembly, metered and sandboxed\\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 46))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (call $proc_exit (i32.const 0))))`;

const SPIN_WAT = `(module
  (memory (export "memory") 1)
  (func (export "_start") (loop $forever (br $forever))))`;

const registry = await startRegistry();
try {
  heading("1. A busybox image (from Debian's busybox-static) in a local registry on 127.0.0.1");
  const image = buildBusyboxImage({ workDir: join(work, "image"), config: { Cmd: ["sh"] } });
  await pushFixture(registry, "demo/busybox", "1.36", image);
  const ref = `${registry.host}/demo/busybox:1.36`;
  console.log(`pushed ${ref} (${image.manifest.digest})`);

  heading("2. Pull it: every blob verified against its digest, stored once");
  await magikrun(["image", "pull", ref]);
  await magikrun(["image", "ls"]);

  heading("3. A native Linux container from the pulled image: own namespaces, cgroup limits");
  const bundle = await magikrunOutput([
    "bundle",
    "create",
    ref,
    "demo-hello",
    "--hostname",
    "demo",
    "--memory",
    "64m",
    "--pids-limit",
    "32",
    "--",
    "sh",
    "-c",
    "echo \"hello from $(hostname), pid $$ as $(id -un)\"; ps; cat /proc/self/cgroup | grep -E 'memory|pids'",
  ]);
  await magikrun(["run", "--bundle", bundle, "demo-hello"]);
  await magikrun(["bundle", "rm", "demo-hello"]);

  heading("4. A memory limit that holds: 32 MiB, and a process that wants 100 MB is OOM-killed (exit 137)");
  const oom = await magikrunOutput([
    "bundle",
    "create",
    ref,
    "demo-oom",
    "--memory",
    "32m",
    "--",
    "sh",
    "-c",
    "head -c 100000000 /dev/zero | tail -n1 >/dev/null",
  ]);
  await magikrun(["run", "--bundle", oom, "demo-oom"], 137);
  await magikrun(["bundle", "rm", "demo-oom"]);

  heading("5. The OCI lifecycle as runc has it: create, state, start, kill, delete");
  const life = await magikrunOutput(["bundle", "create", ref, "demo-life", "--", "sleep", "30"]);
  await magikrun(["create", "--bundle", life, "demo-life"]);
  await magikrun(["state", "demo-life"]);
  await magikrun(["start", "demo-life"]);
  await magikrun(["list"]);
  await magikrun(["kill", "demo-life", "TERM"]);
  await Bun.sleep(200);
  await magikrun(["delete", "--force", "demo-life"]);
  await magikrun(["bundle", "rm", "demo-life"]);

  heading("6. WebAssembly: a WASI module, then a runaway loop stopped by its fuel budget");
  await magikrun(["wasm", "run", wat2wasm("hello", HELLO_WAT)]);
  await magikrun(["wasm", "run", "--fuel", "50000000", wat2wasm("spin", SPIN_WAT)], 134);
} finally {
  await registry.stop();
  rmSync(work, { recursive: true, force: true });
}

heading(failures === 0 ? "demo finished" : `demo finished with ${failures} unexpected result(s)`);
process.exit(failures === 0 ? 0 : 1);
