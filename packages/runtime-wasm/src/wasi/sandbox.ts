import { lstatSync, readlinkSync } from "node:fs";
import { Errno } from "./constants.ts";
import { fail } from "./errors.ts";

/** Linux's MAXSYMLINKS: more expansions than this in one lookup is ELOOP. */
export const MAX_SYMLINK_EXPANSIONS = 40;

/** Where a directory fd sits: the preopen's real host path and the components below it. */
export interface DirLocation {
  readonly root: string;
  readonly rel: readonly string[];
}

export interface ResolvedPath {
  /** Host path of the target (its last component is never a symlink that was meant to be followed). */
  readonly host: string;
  /** Components of the target below the preopen root. */
  readonly rel: readonly string[];
  /** Last component, or null when the path names a directory through "." or ".." (nothing to create/remove). */
  readonly name: string | null;
  /** The guest path ended in "/": the target must be a directory. */
  readonly mustBeDir: boolean;
}

export function hostPathOf(root: string, rel: readonly string[]): string {
  return rel.length === 0 ? root : `${root}/${rel.join("/")}`;
}

/**
 * Resolves a guest path relative to a directory fd without ever leaving its preopen: the walk is done one
 * component at a time, `..` is applied to the already-resolved stack (so it can never climb above the root), and
 * symlinks are expanded by reading them, refusing absolute targets. Escapes fail with EPERM, as wasmtime
 * (cap-std) reports them; absolute guest paths too.
 *
 * Limit: between this walk and the host call that uses its result, another process sharing the directory could
 * swap an intermediate directory for a symlink (TOCTOU). The final component is opened with O_NOFOLLOW by the
 * callers that open; intermediate components are not protected. Guests of one instance cannot race themselves
 * (calls are synchronous), so the exposure is to other writers of the same host directory.
 */
export function resolvePath(dir: DirLocation, path: string, followFinal: boolean): ResolvedPath {
  if (path.length === 0) fail(Errno.NOENT);
  if (path.startsWith("/")) fail(Errno.PERM);
  const stack = [...dir.rel];
  const pending = path.split("/");
  let mustBeDir = path.endsWith("/");
  let expansions = 0;
  let name: string | null = null;

  while (pending.length > 0) {
    const part = pending.shift()!;
    if (part === "" || part === ".") {
      if (pending.every((p) => p === "" || p === ".")) name = null;
      continue;
    }
    if (part === "..") {
      if (stack.length === 0) fail(Errno.PERM);
      stack.pop();
      name = null;
      continue;
    }
    // A trailing "." still needs this component to be a directory, so only empty parts may follow the last.
    const isLast = pending.every((p) => p === "");
    const candidate = hostPathOf(dir.root, [...stack, part]);
    if (isLast && !followFinal && !mustBeDir) {
      stack.push(part);
      name = part;
      break;
    }
    let stat: ReturnType<typeof lstatSync>;
    try {
      stat = lstatSync(candidate);
    } catch (err) {
      if (isLast && (err as { code?: string }).code === "ENOENT") {
        stack.push(part);
        name = part;
        break;
      }
      throw err;
    }
    if (stat.isSymbolicLink()) {
      if (++expansions > MAX_SYMLINK_EXPANSIONS) fail(Errno.LOOP);
      const target = readlinkSync(candidate, "utf8");
      if (target.startsWith("/")) fail(Errno.PERM);
      if (isLast && target.endsWith("/")) mustBeDir = true;
      pending.unshift(...target.split("/"));
      continue;
    }
    if (!isLast && !stat.isDirectory()) fail(Errno.NOTDIR);
    stack.push(part);
    name = part;
    if (isLast) break;
  }
  return { host: hostPathOf(dir.root, stack), rel: stack, name, mustBeDir };
}
