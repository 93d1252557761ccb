import { join } from "node:path";
import { type DigestAlgorithm, type ParsedDigest, parseDigest } from "@magikrun/spec";

/**
 * On-disk layout of the blob store under its root:
 *   blobs/<algorithm>/<first two hex>/<hex>   committed blobs, immutable
 *   blobs/tmp/<pid>-<random>.tmp              blobs being written (same filesystem, so commits are atomic)
 */
export const BLOBS_DIR = "blobs";
export const TMP_DIR = join(BLOBS_DIR, "tmp");
export const ALGORITHMS: readonly DigestAlgorithm[] = ["sha256", "sha512"];

export interface BlobLocation extends ParsedDigest {
  /** Directory holding the blob (its shard). */
  dir: string;
  /** Absolute path of the blob file. */
  path: string;
}

/** Validates the digest strictly (InvalidInput) before any path is built from it. */
export function locateBlob(root: string, digest: unknown): BlobLocation {
  const parsed = parseDigest(digest);
  const dir = join(root, BLOBS_DIR, parsed.algorithm, parsed.hex.slice(0, 2));
  return { ...parsed, dir, path: join(dir, parsed.hex) };
}

const HEX_NAME: Record<DigestAlgorithm, RegExp> = {
  sha256: /^[0-9a-f]{64}$/,
  sha512: /^[0-9a-f]{128}$/,
};

/** The digest a file in a shard directory stands for, or undefined for anything that is not a blob name. */
export function digestOfEntry(algorithm: DigestAlgorithm, shard: string, name: string): string | undefined {
  if (shard.length !== 2 || !HEX_NAME[algorithm].test(name) || !name.startsWith(shard)) return undefined;
  return `${algorithm}:${name}`;
}
