import { readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { LayerPruner } from "./image-store.ts";
import { chainIds } from "./layer-cache.ts";
import { LAYOUT } from "./types.ts";

/**
 * Prunes the layer cache (`<root>/layers/sha256/<chain id hex>/`): every unpacked layer whose chain id no local
 * image has is removed. Containers' root filesystems are not known here: callers that run containers must keep the
 * images of existing containers referenced (or not prune while they exist).
 */
export function layerCachePruner(
  root: string,
  remove: (chainId: string) => void = (chainId) =>
    rmSync(join(root, LAYOUT.layers, "sha256", chainId.slice("sha256:".length)), {
      recursive: true,
      force: true,
    }),
): LayerPruner {
  return async ({ images }) => {
    const keep = new Set<string>();
    for (const diffIds of images) for (const id of chainIds(diffIds)) keep.add(id);
    const dir = join(root, LAYOUT.layers, "sha256");
    let entries: string[];
    try {
      entries = readdirSync(dir);
    } catch {
      return { removed: [] };
    }
    const removed: string[] = [];
    for (const hex of entries.sort()) {
      if (!/^[0-9a-f]{64}$/.test(hex)) continue;
      const chainId = `sha256:${hex}`;
      if (keep.has(chainId)) continue;
      remove(chainId);
      removed.push(chainId);
    }
    return { removed };
  };
}
