import { existsSync, readdirSync, readFileSync } from "node:fs";
import type { ExitStatus } from "@magikrun/spec/runtime";
import type { RuntimeConfig } from "@magikrun/spec/runtime-config";
import { loadBundle } from "../bundle.ts";
import { NativeRuntime } from "../native-runtime.ts";
import { makeBundle, RUNC, uniqueId } from "./busybox-bundle.ts";

export const isRoot = process.getuid?.() === 0;

/** Runs `args` in a fresh busybox container to completion; returns its exit status and output. */
export async function runToExit(
  rt: NativeRuntime,
  args: string[],
  edit?: (config: RuntimeConfig) => void,
): Promise<{ exit: ExitStatus; stdout: string; stderr: string; id: string }> {
  const bundle = makeBundle(args, edit);
  const id = uniqueId();
  try {
    await rt.create({
      id,
      bundle: loadBundle(bundle.dir),
      stdio: {
        stdin: "ignore",
        stdout: { path: `${bundle.dir}/stdout` },
        stderr: { path: `${bundle.dir}/stderr` },
      },
    });
    await rt.start(id);
    const exit = await rt.wait(id);
    await rt.delete(id);
    return {
      exit,
      id,
      stdout: readFileSync(`${bundle.dir}/stdout`, "utf8"),
      stderr: readFileSync(`${bundle.dir}/stderr`, "utf8"),
    };
  } finally {
    bundle.cleanup();
  }
}

/** Force-deletes every container of a runtime, and of the other state roots a test made under its root. */
export async function removeAll(rt: NativeRuntime): Promise<void> {
  const nested = safeReaddir(rt.root)
    .map((name) => `${rt.root}/${name}`)
    .filter((dir) => existsSync(`${dir}/.lock`));
  for (const runtime of [rt, ...nested.map((root) => new NativeRuntime({ root, onWarning: () => {} }))]) {
    for (const id of runtime.store.ids()) {
      if (existsSync(`${runtime.root}/${id}/.lock`)) continue;
      await runtime.delete(id, { force: true }).catch(() => {});
    }
  }
}

/** Host-side leftovers of a container: state dir, cgroup dirs named after it, mounts naming it. */
export function leftovers(root: string, id: string): string[] {
  const found: string[] = [];
  if (existsSync(`${root}/${id}`)) found.push(`${root}/${id}`);
  for (const hierarchy of safeReaddir("/sys/fs/cgroup")) {
    const dir = `/sys/fs/cgroup/${hierarchy}/magikrun/${id}`;
    if (existsSync(dir)) found.push(dir);
  }
  for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    if (line.includes(id)) found.push(`mount: ${line}`);
  }
  return found;
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/**
 * `runc create` with stdout and stderr going to files: the created container inherits runc's stdio, and a pipe it
 * held would keep spawnSync waiting until the container exits, which it does only after start.
 */
export function runcCreate(
  runcRoot: string,
  bundleDir: string,
  id: string,
  files: { out: string; err: string },
): { code: number; stderr: string } {
  const created = Bun.spawnSync([RUNC, "--root", runcRoot, "create", "--bundle", bundleDir, id], {
    stdio: ["ignore", Bun.file(files.out), Bun.file(files.err)],
  });
  return { code: created.exitCode, stderr: readFileSync(files.err, "utf8") };
}

/** runc has no wait: polls `runc state` until the container's process has exited. */
export async function runcWaitStopped(runcRoot: string, id: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const status = () =>
    JSON.parse(Bun.spawnSync([RUNC, "--root", runcRoot, "state", id]).stdout.toString()).status as string;
  while (status() !== "stopped") {
    if (Date.now() > deadline) throw new Error(`runc's container ${id} did not exit`);
    await Bun.sleep(5);
  }
}
