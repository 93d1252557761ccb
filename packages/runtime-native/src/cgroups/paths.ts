import { posix } from "node:path";
import { MagikError } from "@magikrun/spec/errors";
import type { CgroupLayout, CgroupMount } from "./layout.ts";

/** Parent of the cgroups of containers whose config has no `linux.cgroupsPath`. */
export const DEFAULT_CGROUP_PARENT = "/magikrun";

/** Where a relative cgroupsPath is placed. */
export type RelativeBase =
  /** Under the runtime's own cgroup in each hierarchy (what runc does). */
  | { kind: "own" }
  /** Under one fixed cgroup, the same in every hierarchy. */
  | { kind: "fixed"; path: string };

/** Checks a cgroupsPath (or the default for `id`) and returns it normalised, still relative when it was. */
export function normaliseCgroupsPath(id: string, cgroupsPath: string | undefined): string {
  const raw =
    cgroupsPath === undefined || cgroupsPath === "" ? `${DEFAULT_CGROUP_PARENT}/${id}` : cgroupsPath;
  if (!raw.startsWith("/") && /^[^/]*:[^/]*:[^/]*$/.test(raw)) {
    throw new MagikError("NotSupported", `cgroupsPath ${JSON.stringify(raw)} is in systemd slice form`, {
      details: { cgroupsPath: raw },
      hint: "magikrun manages cgroupfs directly; give a path such as /magikrun/<id> instead of slice:prefix:name.",
    });
  }
  if (raw.split("/").some((part) => part === "..") || raw.includes("\0")) {
    throw new MagikError("PathTraversal", `cgroupsPath ${JSON.stringify(raw)} leaves the cgroup hierarchy`, {
      details: { cgroupsPath: raw },
      hint: "cgroupsPath must not contain '..' components.",
    });
  }
  const normal = posix.normalize(raw).replace(/\/+$/, "");
  if (normal === "" || normal === "/" || normal === ".") {
    throw new MagikError("InvalidInput", `cgroupsPath ${JSON.stringify(raw)} names the root cgroup`, {
      details: { cgroupsPath: raw },
      hint: "A container needs its own cgroup; give a path below the root, e.g. /magikrun/<id>.",
    });
  }
  return normal;
}

/** Cgroup path inside one hierarchy (absolute within that hierarchy) for a normalised cgroupsPath. */
export function cgroupPathIn(normalised: string, ownCgroup: string | undefined, base: RelativeBase): string {
  if (normalised.startsWith("/")) return normalised;
  const parent = base.kind === "fixed" ? base.path : (ownCgroup ?? "/");
  return posix.join("/", parent, normalised);
}

/** Directory of a cgroup path on a mount, taking the mount's own root (cgroup namespaces) into account. */
export function directoryOn(mount: CgroupMount, cgroupPath: string): string {
  let inside = cgroupPath;
  if (mount.root !== "/" && (inside === mount.root || inside.startsWith(`${mount.root}/`))) {
    inside = inside.slice(mount.root.length);
  }
  return posix.join(mount.mountPoint, inside);
}

/**
 * The leaf directory per hierarchy: v1 controllers by name, the unified hierarchy as "unified".
 * Co-mounted v1 controllers get the same directory.
 */
export function leafDirectories(
  layout: CgroupLayout,
  normalised: string,
  base: RelativeBase = { kind: "own" },
): Record<string, string> {
  const dirs: Record<string, string> = {};
  for (const [controller, mount] of Object.entries(layout.v1)) {
    dirs[controller] = directoryOn(mount, cgroupPathIn(normalised, layout.own.v1[controller], base));
  }
  if (layout.v2) dirs.unified = directoryOn(layout.v2, cgroupPathIn(normalised, layout.own.v2, base));
  return dirs;
}
