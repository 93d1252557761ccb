import { Errno } from "./constants.ts";
import { errnoOf, fail } from "./errors.ts";
import type { FsRoot, HostFs } from "./host-fs.ts";

/** Linux's MAXSYMLINKS: more expansions than this in one lookup is ELOOP. */
export const MAX_SYMLINK_EXPANSIONS = 40;

/** Where a directory fd sits: the preopen's real host path and the components below it. */
export interface DirLocation extends FsRoot {
  readonly rel: readonly string[];
}

export interface ResolvedPath {
  /** Components of the target below the preopen root; the last is never a symlink meant to be followed. */
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
 * The walk computes a symlink-free path; the HostFs that then acts on it decides what a concurrent change can
 * do. With openat2 (beneath-fs.ts) the kernel refuses to leave the root or cross a symlink, so a directory
 * swapped for a symlink between the walk and the call (TOCTOU) fails the call instead of redirecting it. The
 * node:fs fallback (host-fs.ts) re-resolves full paths and has that window; guests of one instance cannot race
 * themselves (calls are synchronous), so the exposure there is to other writers of the same host directory.
 */
export function resolvePath(fs: HostFs, dir: DirLocation, path: string, followFinal: boolean): ResolvedPath {
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
    const candidate = [...stack, part];
    if (isLast && !followFinal && !mustBeDir) {
      stack.push(part);
      name = part;
      break;
    }
    let stat: ReturnType<HostFs["lstat"]>;
    try {
      stat = fs.lstat(dir, candidate);
    } catch (err) {
      if (isLast && errnoOf(err) === Errno.NOENT) {
        stack.push(part);
        name = part;
        break;
      }
      throw err;
    }
    if (stat.isSymbolicLink()) {
      if (++expansions > MAX_SYMLINK_EXPANSIONS) fail(Errno.LOOP);
      const target = new TextDecoder().decode(fs.readlink(dir, candidate));
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
  return { rel: stack, name, mustBeDir };
}
