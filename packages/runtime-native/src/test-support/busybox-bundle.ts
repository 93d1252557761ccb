import { execFileSync } from "node:child_process";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { RuntimeConfig } from "@magikrun/spec/runtime-config";
import { defaultSpec } from "../default-spec.ts";

export const BUSYBOX = "/bin/busybox";
export const RUNC = "/usr/sbin/runc";

export function haveBusybox(): boolean {
  if (!existsSync(BUSYBOX)) return false;
  // busybox-static has no dynamic section: `ldd` fails on it. A dynamic busybox would not run in the rootfs.
  try {
    execFileSync("ldd", [BUSYBOX], { stdio: "ignore" });
    return false;
  } catch {
    return true;
  }
}

let applets: string[] | undefined;

/** A rootfs with busybox-static and one symlink per applet, /etc/passwd and /etc/group. */
export function makeBusyboxRootfs(rootfs: string): void {
  for (const d of ["bin", "etc", "proc", "sys", "dev", "tmp", "root", "home/user"]) {
    mkdirSync(join(rootfs, d), { recursive: true });
  }
  chmodSync(join(rootfs, "tmp"), 0o1777);
  copyFileSync(BUSYBOX, join(rootfs, "bin/busybox"));
  chmodSync(join(rootfs, "bin/busybox"), 0o755);
  applets ??= execFileSync(BUSYBOX, ["--list"], { encoding: "utf8" }).split("\n").filter(Boolean);
  for (const applet of applets) {
    if (applet !== "busybox") symlinkSync("busybox", join(rootfs, "bin", applet));
  }
  writeFileSync(
    join(rootfs, "etc/passwd"),
    "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
  );
  writeFileSync(join(rootfs, "etc/group"), "root:x:0:\nuser:x:1000:\nextra:x:2000:user\nnogroup:x:65534:\n");
}

export interface TestBundle {
  dir: string;
  config: RuntimeConfig;
  /** Rewrites config.json from `config` (after a test changed it). */
  save(): void;
  cleanup(): void;
}

/** A bundle in a fresh temp dir: busybox rootfs and a runc-spec-like config running `args` without a terminal. */
export function makeBundle(args: string[], edit?: (config: RuntimeConfig) => void): TestBundle {
  const dir = mkdtempSync(join(tmpdir(), "magikrun-bundle-"));
  makeBusyboxRootfs(join(dir, "rootfs"));
  const config = defaultSpec({ args, terminal: false });
  config.hostname = "magikrun-test";
  edit?.(config);
  const bundle: TestBundle = {
    dir,
    config,
    save: () => writeFileSync(join(dir, "config.json"), JSON.stringify(bundle.config, null, 2)),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
  bundle.save();
  return bundle;
}

/** A unique state root for one test file (never the default /run/magikrun). */
export function makeStateRoot(): { root: string; cleanup(): void } {
  const root = mkdtempSync(join(tmpdir(), "magikrun-state-"));
  return { root, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

let counter = 0;
export function uniqueId(prefix = "t"): string {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${counter++}`;
}
