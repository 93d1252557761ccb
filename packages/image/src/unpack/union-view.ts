import fs from "node:fs";
import path from "node:path";
import { MagikError } from "@magikrun/spec";
import { MAX_SYMLINK_FOLLOWS } from "../resolve-in-root.ts";

/**
 * The merged view of a layer being unpacked over the layers below it, as overlayfs will show it.
 *
 * Each layer is unpacked into its own directory (so cached layers can be stacked as overlay lowerdirs), which means
 * a symlink made by an earlier layer is not in the directory being written. To keep the union faithful *and* safe,
 * every entry's parent path is resolved here against the stack (upper first, then lowers top to bottom, honouring
 * whiteouts and opaque directories), following symlinks with chroot semantics (`/` and `..` stop at the image
 * root, at most 40 links). The result is a symlink-free path, which is then created in the layer being written, so
 * a write "through" `lib -> usr/lib` from a lower layer lands in `usr/lib`, and `evil -> /etc` lands in the image's
 * `/etc`, never the host's. The same result as unpacking onto the merged tree with RESOLVE_IN_ROOT.
 */

export interface LayerView {
  /** Directory holding the layer's files. */
  dir: string;
  /** Paths (relative, "a/b") whited out by this layer. */
  whiteouts: Set<string>;
  /** Directories of this layer that hide what is below them. */
  opaques: Set<string>;
}

export interface ResolvedParent {
  /** Symlink-free components of the parent directory. */
  parts: string[];
  /** Whether a symlink (in this layer or a lower one) was followed to get there. */
  viaSymlink: boolean;
}

type Probe = { kind: "dir" | "symlink" | "other" } | undefined;

export class UnionView {
  /** layers[0] is the layer being written; the rest are lower layers, top to bottom, never modified. */
  readonly layers: LayerView[];
  readonly #lowerCache = new Map<string, Probe>();
  /** Directories known to exist in the upper layer (cleared below a path when something there is removed). */
  readonly upperDirs = new Set<string>();

  constructor(upper: LayerView, lowers: LayerView[]) {
    this.layers = [upper, ...lowers];
  }

  #probe(index: number, rel: string): Probe {
    if (index === 0 && this.upperDirs.has(rel)) return { kind: "dir" };
    const key = `${index}\0${rel}`;
    if (index > 0 && this.#lowerCache.has(key)) return this.#lowerCache.get(key);
    let probe: Probe;
    try {
      const stat = fs.lstatSync(path.join(this.layers[index]!.dir, rel), { throwIfNoEntry: false });
      probe = stat && { kind: stat.isDirectory() ? "dir" : stat.isSymbolicLink() ? "symlink" : "other" };
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code !== "ENOENT" && code !== "ENOTDIR") throw err;
      probe = undefined;
    }
    if (index > 0) this.#lowerCache.set(key, probe);
    else if (probe?.kind === "dir") this.upperDirs.add(rel);
    return probe;
  }

  /** Forgets what is known about the upper layer at and below `rel` (after a removal). */
  forgetUpper(rel: string): void {
    for (const known of this.upperDirs) {
      if (known === rel || known.startsWith(`${rel}/`)) this.upperDirs.delete(known);
    }
  }

  /** The topmost visible entry at `rel` among the layers `visible` (indices), or undefined when there is none. */
  #find(rel: string, visible: number[]): { index: number; probe: NonNullable<Probe> } | undefined {
    for (const index of visible) {
      if (this.layers[index]!.whiteouts.has(rel)) return undefined;
      const probe = this.#probe(index, rel);
      if (probe) return { index, probe };
    }
    return undefined;
  }

  /** Layers whose directory at `rel` merges into the union (stops at a non-directory, whiteout or opaque dir). */
  #mergedBelow(rel: string, visible: number[], from: number): number[] {
    const merged = [0];
    for (const index of visible) {
      if (index < from || index === 0) continue;
      const layer = this.layers[index]!;
      if (layer.whiteouts.has(rel)) break;
      const probe = this.#probe(index, rel);
      if (!probe) continue;
      if (probe.kind !== "dir") break;
      merged.push(index);
      if (layer.opaques.has(rel)) break;
    }
    if (this.layers[0]!.opaques.has(rel)) return [0];
    return merged;
  }

  /** The lower layer's directory seen at `rel` (a symlink-free path) through the union, to copy its attributes. */
  lowerDirAt(rel: string): string | undefined {
    const visible = this.#visibleFor(rel.split("/").slice(0, -1)).filter((index) => index > 0);
    const hit = this.#find(rel, visible);
    return hit?.probe.kind === "dir" ? path.join(this.layers[hit.index]!.dir, rel) : undefined;
  }

  /** What the union shows at `rel` (a symlink-free path), top layer first. */
  lookup(rel: string): { index: number; kind: "dir" | "symlink" | "other" } | undefined {
    const parts = rel.split("/");
    const parent = this.resolveParent(parts.slice(0, -1), rel, false);
    const visible = this.#visibleFor(parent.parts);
    const hit = this.#find([...parent.parts, parts[parts.length - 1]!].join("/"), visible);
    return hit ? { index: hit.index, kind: hit.probe.kind } : undefined;
  }

  #visibleFor(parts: string[]): number[] {
    let visible = this.layers.map((_, i) => i);
    for (let i = 0; i < parts.length; i++) {
      const rel = parts.slice(0, i + 1).join("/");
      const hit = this.#find(rel, visible);
      visible = hit ? this.#mergedBelow(rel, visible, hit.index) : [0];
    }
    return visible;
  }

  /**
   * Resolves the parent components of an entry. Missing components are allowed (they will be created); a
   * component that is a file is not. With `followSymlinks` false, any symlink on the way is refused.
   */
  resolveParent(parts: string[], entryPath: string, followSymlinks = true): ResolvedParent {
    const resolved: string[] = [];
    const visibleStack: number[][] = [this.layers.map((_, i) => i)];
    const queue = [...parts];
    let follows = 0;
    while (queue.length > 0) {
      const part = queue.shift()!;
      if (part === "" || part === ".") continue;
      if (part === "..") {
        if (resolved.length > 0) {
          resolved.pop();
          visibleStack.pop();
        }
        continue;
      }
      const rel = [...resolved, part].join("/");
      const visible = visibleStack[visibleStack.length - 1]!;
      const hit = this.#find(rel, visible);
      if (hit?.probe.kind === "symlink") {
        if (!followSymlinks) {
          throw new MagikError(
            "PathTraversal",
            `${entryPath}: its parent path goes through the symlink ${rel}`,
            {
              details: { path: entryPath, symlink: rel },
            },
          );
        }
        if (++follows > MAX_SYMLINK_FOLLOWS) {
          throw new MagikError(
            "PathTraversal",
            `${entryPath}: more than ${MAX_SYMLINK_FOLLOWS} symlinks (or a loop)`,
            {
              details: { path: entryPath, limit: MAX_SYMLINK_FOLLOWS },
            },
          );
        }
        const target = fs.readlinkSync(path.join(this.layers[hit.index]!.dir, rel));
        if (target.startsWith("/")) {
          resolved.length = 0;
          visibleStack.length = 1;
        }
        queue.unshift(...target.split("/"));
        continue;
      }
      if (hit?.probe.kind === "other") {
        throw new MagikError("LayerExtractionFailed", `${entryPath}: ${rel} is not a directory`, {
          details: { path: entryPath, component: rel },
        });
      }
      resolved.push(part);
      visibleStack.push(hit ? this.#mergedBelow(rel, visible, hit.index) : [0]);
    }
    return { parts: resolved, viaSymlink: follows > 0 };
  }
}
