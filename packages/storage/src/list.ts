import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { ALGORITHMS, BLOBS_DIR, digestOfEntry } from "./layout.ts";

export interface BlobInfo {
  digest: string;
  size: number;
}

/** Every committed blob under `root`, sorted by digest. Anything that is not a well-formed blob is skipped. */
export async function listBlobs(root: string): Promise<BlobInfo[]> {
  const blobs: BlobInfo[] = [];
  for (const algorithm of ALGORITHMS) {
    const algorithmDir = join(root, BLOBS_DIR, algorithm);
    for (const shard of await readdirIfExists(algorithmDir)) {
      const shardDir = join(algorithmDir, shard);
      for (const name of await readdirIfExists(shardDir)) {
        const digest = digestOfEntry(algorithm, shard, name);
        if (digest === undefined) continue;
        // A blob deleted while we list is simply not listed.
        const info = await stat(join(shardDir, name)).catch(() => undefined);
        if (info?.isFile()) blobs.push({ digest, size: info.size });
      }
    }
  }
  return blobs.sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0));
}

async function readdirIfExists(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === "ENOENT" || code === "ENOTDIR") return [];
    throw err;
  }
}
