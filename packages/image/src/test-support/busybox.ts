import {
  chmodSync,
  copyFileSync,
  existsSync,
  linkSync,
  mkdirSync,
  readdirSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import {
  type FixtureImage,
  type FixtureIndex,
  type ImageConfigInput,
  type LayerCompressionKind,
  makeImage,
  makeIndex,
  makeLayer,
} from "./fixture.ts";

/** Debian's busybox-static: one static binary that is every tool of a tiny rootfs. */
export const BUSYBOX_PATH = "/bin/busybox";

export function hasBusybox(): boolean {
  return existsSync(BUSYBOX_PATH);
}

/** Fails with the reason a test should give when skipping. */
export function requireBusybox(): void {
  if (!hasBusybox()) throw new Error(`${BUSYBOX_PATH} is missing: install Debian's busybox-static`);
}

function listApplets(): string[] {
  const proc = Bun.spawnSync([BUSYBOX_PATH, "--list-full"], { stdout: "pipe", stderr: "pipe" });
  if (proc.exitCode !== 0) throw new Error(`busybox --list-full failed: ${proc.stderr.toString()}`);
  return proc.stdout
    .toString()
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.length > 0 && l !== "bin/busybox");
}

/**
 * Writes a minimal rootfs into `dir`: /bin/busybox, a symlink per applet (`bin/sh -> /bin/busybox`), /etc/passwd,
 * /etc/group, and the usual empty directories. Modes are set explicitly so the tar does not depend on the umask.
 */
export function makeBusyboxRootfs(dir: string): void {
  requireBusybox();
  for (const d of [
    "bin",
    "sbin",
    "usr/bin",
    "usr/sbin",
    "etc",
    "tmp",
    "root",
    "proc",
    "sys",
    "dev",
    "home",
  ]) {
    mkdirSync(join(dir, d), { recursive: true });
    chmodSync(join(dir, d), d === "tmp" ? 0o1777 : 0o755);
  }
  chmodSync(dir, 0o755);
  copyFileSync(BUSYBOX_PATH, join(dir, "bin/busybox"));
  chmodSync(join(dir, "bin/busybox"), 0o755);
  for (const applet of listApplets()) {
    const target = join(dir, applet);
    mkdirSync(dirname(target), { recursive: true });
    if (!existsSync(target)) symlinkSync("/bin/busybox", target);
  }
  writeFileSync(
    join(dir, "etc/passwd"),
    "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
  );
  writeFileSync(join(dir, "etc/group"), "root:x:0:\nnogroup:x:65534:\n");
  chmodSync(join(dir, "etc/passwd"), 0o644);
  chmodSync(join(dir, "etc/group"), 0o644);
}

/**
 * Deterministic tar of a directory's contents (names without `./`, sorted, mtime 0, owner 0:0), made with GNU tar
 * so the fixtures do not depend on the code under test.
 */
export function tarDirectory(dir: string): Uint8Array {
  const entries = readdirSync(dir).sort();
  const proc = Bun.spawnSync(
    [
      "tar",
      "--sort=name",
      "--mtime=@0",
      "--owner=0",
      "--group=0",
      "--numeric-owner",
      "--format=gnu",
      "-C",
      dir,
      "-cf",
      "-",
      ...entries,
    ],
    { stdout: "pipe", stderr: "pipe" },
  );
  if (proc.exitCode !== 0) throw new Error(`tar failed: ${proc.stderr.toString()}`);
  return new Uint8Array(proc.stdout);
}

export interface BusyboxImageOptions extends ImageConfigInput {
  /** Scratch directory for the rootfs; the caller owns and removes it. */
  workDir: string;
  compression?: LayerCompressionKind;
  format?: "oci" | "docker";
}

/** One-layer busybox image (gzip OCI by default). */
export function buildBusyboxImage(options: BusyboxImageOptions): FixtureImage {
  const rootfs = join(options.workDir, "busybox-rootfs");
  if (!existsSync(join(rootfs, "bin/busybox"))) makeBusyboxRootfs(rootfs);
  const format = options.format ?? "oci";
  const layer = makeLayer(tarDirectory(rootfs), options.compression ?? "gzip", format);
  return makeImage([layer], options, format);
}

/**
 * Busybox plus two layers that exercise the unpacker: a whiteout (`etc/.wh.group`), an opaque directory
 * (`opt/.wh..wh..opq`), a hardlink and symlinks (relative and absolute).
 */
export function buildLayeredBusyboxImage(options: BusyboxImageOptions): FixtureImage {
  const base = buildBusyboxImage(options);
  const compression = options.compression ?? "gzip";
  const format = options.format ?? "oci";
  const l2 = join(options.workDir, "layer2");
  mkdirSync(join(l2, "opt/old"), { recursive: true });
  mkdirSync(join(l2, "data"), { recursive: true });
  writeFileSync(join(l2, "opt/old/file.txt"), "from layer 2\n");
  writeFileSync(join(l2, "data/original.txt"), "hardlinked content\n");
  linkSync(join(l2, "data/original.txt"), join(l2, "data/hardlink.txt"));
  symlinkSync("original.txt", join(l2, "data/relative-link"));
  symlinkSync("/data/original.txt", join(l2, "data/absolute-link"));
  const l3 = join(options.workDir, "layer3");
  mkdirSync(join(l3, "opt"), { recursive: true });
  mkdirSync(join(l3, "etc"), { recursive: true });
  writeFileSync(join(l3, "opt/.wh..wh..opq"), "");
  writeFileSync(join(l3, "opt/new.txt"), "from layer 3\n");
  writeFileSync(join(l3, "etc/.wh.group"), "");
  const layers = [
    base.layers[0]!,
    makeLayer(tarDirectory(l2), compression, format),
    makeLayer(tarDirectory(l3), compression, format),
  ];
  return makeImage(layers, options, format);
}

/** An index with linux/amd64, linux/arm64/v8 and linux/arm/v7 images (same busybox bytes, different configs). */
export function buildMultiPlatformBusybox(options: BusyboxImageOptions): FixtureIndex {
  const amd64 = buildBusyboxImage({ ...options, architecture: "amd64" });
  const layer = amd64.layers[0]!;
  const format = options.format ?? "oci";
  const arm64 = makeImage([layer], { ...options, architecture: "arm64", variant: "v8" }, format);
  const arm = makeImage([layer], { ...options, architecture: "arm", variant: "v7" }, format);
  return makeIndex([arm, arm64, amd64], format);
}
