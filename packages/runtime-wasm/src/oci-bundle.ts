import {
  closeSync,
  lstatSync,
  openSync,
  readlinkSync,
  readSync,
  realpathSync,
  type Stats,
  statSync,
} from "node:fs";
import { join, posix, resolve } from "node:path";
import { MagikError } from "@magikrun/spec/errors";
import type { OciBundle, WasiPreopen, WasmBundle } from "@magikrun/spec/runtime";
import type { Mount } from "@magikrun/spec/runtime-config";
import { WASM_ANNOTATIONS } from "@magikrun/spec/wasm-annotations";

export { WASM_ANNOTATIONS };

const WASM_MAGIC = [0x00, 0x61, 0x73, 0x6d];

function startsWithWasmMagic(path: string): boolean {
  let fd: number | undefined;
  try {
    fd = openSync(path, "r");
    const head = new Uint8Array(4);
    return readSync(fd, head, 0, 4, 0) === 4 && WASM_MAGIC.every((b, i) => head[i] === b);
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function annotatedLimit(annotations: Record<string, string>, key: string): number | undefined {
  const raw = annotations[key];
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(value) || value <= 0) {
    throw new MagikError(
      "InvalidBundle",
      `annotation ${key} must be a positive integer, got ${JSON.stringify(raw)}`,
      {
        details: { annotation: key, value: raw },
      },
    );
  }
  return value;
}

function preopenRootfs(annotations: Record<string, string>): boolean {
  const raw = annotations[WASM_ANNOTATIONS.preopenRootfs];
  if (raw === undefined || raw === "true") return true;
  if (raw === "false") return false;
  throw new MagikError(
    "InvalidBundle",
    `annotation ${WASM_ANNOTATIONS.preopenRootfs} must be true or false, got ${JSON.stringify(raw)}`,
    { details: { annotation: WASM_ANNOTATIONS.preopenRootfs, value: raw } },
  );
}

function isBind(mount: Mount): boolean {
  return mount.type === "bind" || (mount.options ?? []).some((o) => o === "bind" || o === "rbind");
}

/**
 * Bind mounts as preopens at their destinations: where runc or crun would mount a directory into the container's
 * "/", the module gets it preopened at that path (the last of ro/rw wins, as in mount options). Other mounts
 * (proc, tmpfs, ...) and binds of files (resolv.conf, hosts: a preopen is a directory) have no WASI counterpart
 * and are left out; a missing source stays in, for the runtime to report.
 */
function bindPreopens(bundle: OciBundle): WasiPreopen[] {
  const preopens: WasiPreopen[] = [];
  for (const mount of bundle.config.mounts ?? []) {
    if (!isBind(mount)) continue;
    if (!mount.source) {
      throw new MagikError("InvalidBundle", `the bind mount at ${mount.destination} has no source`, {
        details: { mount },
        hint: "A bind mount names the host directory it binds in source.",
      });
    }
    // runc takes a relative source from the bundle directory.
    const hostPath = resolve(bundle.path, mount.source);
    if (statSync(hostPath, { throwIfNoEntry: false })?.isDirectory() === false) continue;
    const readonly = (mount.options ?? []).reduce(
      (ro, o) => (o === "ro" ? true : o === "rw" ? false : ro),
      false,
    );
    preopens.push({ guestPath: mount.destination, hostPath, ...(readonly && { readonly: true }) });
  }
  return preopens;
}

/** Symlinks followed while resolving one path, as Linux's MAXSYMLINKS. */
const MAX_SYMLINKS = 40;

/**
 * `inRoot` (absolute, in the container's view) resolved under `rootfs` as the container would see it: an absolute
 * symlink target starts again at the rootfs and ".." stops there, so no path leads out of it. The host path of a
 * file with no symlink left in it, or undefined when some component is missing (or loops).
 */
function resolveInRoot(rootfs: string, inRoot: string): string | undefined {
  let pending = inRoot.split("/").filter((c) => c !== "" && c !== ".");
  const resolved: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const [component, ...rest] = pending as [string, ...string[]];
    pending = rest;
    if (component === "..") {
      resolved.pop();
      continue;
    }
    const host = join(rootfs, ...resolved, component);
    let st: Stats;
    try {
      st = lstatSync(host);
    } catch {
      return undefined; // ENOENT, ENOTDIR (a file used as a directory), ...: no module there
    }
    if (!st.isSymbolicLink()) {
      resolved.push(component);
      continue;
    }
    if (++links > MAX_SYMLINKS) return undefined;
    const target = readlinkSync(host);
    if (target.startsWith("/")) resolved.length = 0;
    pending = [...target.split("/").filter((c) => c !== "" && c !== "."), ...pending];
  }
  return join(rootfs, ...resolved);
}

/**
 * Reads an OCI bundle as a wasm bundle when its program is a WebAssembly module: process.args[0], resolved in the
 * rootfs from process.cwd as inside the container (symlinks included: see resolveInRoot), starts with the wasm
 * magic, or the wasm annotations say so. Like runwasi, the rootfs is preopened as "/" (read-only when
 * root.readonly) unless a bind mount targets "/" or the preopen-rootfs annotation is "false", and bind mounts of
 * directories are preopened at their destinations after it. Returns undefined for an ordinary (native) bundle,
 * so callers can pick the runtime automatically.
 */
export function wasmBundleFromOci(bundle: OciBundle): WasmBundle | undefined {
  const { process: proc, root } = bundle.config;
  const annotations = bundle.config.annotations ?? {};
  const program = proc?.args?.[0];
  if (!program || !root) return undefined;
  const rootfs = realpathSync(resolve(bundle.path, root.path));
  const modulePath = resolveInRoot(rootfs, posix.resolve("/", proc.cwd || "/", program));
  if (modulePath === undefined) return undefined;
  const annotated =
    annotations[WASM_ANNOTATIONS.handler] === "wasm" ||
    (annotations[WASM_ANNOTATIONS.variant] ?? "").startsWith("compat");
  if (!annotated && !startsWithWasmMagic(modulePath)) return undefined;
  const wasm: WasmBundle = {
    kind: "wasm",
    path: bundle.path,
    modulePath,
    args: proc.args ?? [program],
    env: proc.env ?? [],
    preopens: [],
  };
  const binds = bindPreopens(bundle);
  if (preopenRootfs(annotations) && !binds.some((p) => p.guestPath === "/")) {
    wasm.preopens.push({ guestPath: "/", hostPath: rootfs, ...(root.readonly && { readonly: true }) });
  }
  wasm.preopens.push(...binds);
  const fuel = annotatedLimit(annotations, WASM_ANNOTATIONS.fuel);
  const maxMemoryPages = annotatedLimit(annotations, WASM_ANNOTATIONS.maxMemoryPages);
  const timeoutMs = annotatedLimit(annotations, WASM_ANNOTATIONS.timeoutMs);
  if (fuel !== undefined) wasm.fuel = fuel;
  if (maxMemoryPages !== undefined) wasm.maxMemoryPages = maxMemoryPages;
  if (timeoutMs !== undefined) wasm.timeoutMs = timeoutMs;
  return wasm;
}
