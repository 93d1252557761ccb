import { mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { MagikError } from "@magikrun/spec";
import { LAYOUT } from "./types.ts";

/** One reference in the local image index. */
export interface ImageRecord {
  /** Canonical reference: `docker.io/library/busybox:latest`, `host/name@sha256:…`. */
  reference: string;
  /** The platform-specific image manifest. */
  manifestDigest: string;
  /** The index/manifest list the image was selected from, when there was one. */
  indexDigest?: string;
  configDigest: string;
  mediaType: string;
  /** Manifest + config + layer blob sizes. */
  size: number;
  platform: string;
  /** When this reference was stored (ISO 8601). */
  created: string;
}

export interface IndexFile {
  schemaVersion: 1;
  images: Record<string, ImageRecord>;
}

const LOCK_STALE_MS = 30_000;
const LOCK_WAIT_MS = 10_000;

/**
 * `<root>/images/index.json`. Updates are read-modify-write under an exclusive lock file and land atomically
 * (temp file, fsync, rename), so a crash leaves either the old or the new index, and concurrent writers in other
 * processes do not lose each other's changes.
 */
export class ImageIndexFile {
  readonly dir: string;
  readonly path: string;

  constructor(root: string) {
    this.dir = join(root, LAYOUT.images);
    this.path = join(this.dir, "index.json");
  }

  read(): IndexFile {
    let text: string;
    try {
      text = readFileSync(this.path, "utf8");
    } catch (err) {
      if ((err as { code?: string }).code === "ENOENT") return { schemaVersion: 1, images: {} };
      throw new MagikError("StorageWriteFailed", `cannot read the image index ${this.path}`, {
        cause: err,
        details: { path: this.path },
      });
    }
    try {
      const doc = JSON.parse(text) as IndexFile;
      if (doc?.schemaVersion !== 1 || typeof doc.images !== "object" || doc.images === null)
        throw new Error("bad shape");
      return doc;
    } catch (err) {
      throw new MagikError("Internal", `the image index ${this.path} is corrupt`, {
        cause: err,
        details: { path: this.path },
        hint: "Move the file away and re-pull or re-import images.",
      });
    }
  }

  /** Applies `change` to the current index under the lock and writes the result atomically. */
  async update<T>(change: (index: IndexFile) => T): Promise<T> {
    mkdirSync(this.dir, { recursive: true });
    const release = await this.lock();
    try {
      const index = this.read();
      const result = change(index);
      const tmp = `${this.path}.${process.pid}.${Date.now()}.tmp`;
      try {
        writeFileSync(tmp, `${JSON.stringify(index, null, 2)}\n`, { flush: true });
        renameSync(tmp, this.path);
      } catch (err) {
        rmSync(tmp, { force: true });
        throw new MagikError("StorageWriteFailed", `cannot write the image index ${this.path}`, {
          cause: err,
          details: { path: this.path, errno: (err as { code?: unknown }).code },
        });
      }
      return result;
    } finally {
      await release();
    }
  }

  private async lock(): Promise<() => Promise<void>> {
    const lockPath = join(this.dir, "index.lock");
    const deadline = Date.now() + LOCK_WAIT_MS;
    for (;;) {
      try {
        const handle = await open(lockPath, "wx");
        await handle.writeFile(String(process.pid));
        await handle.close();
        return async () => rmSync(lockPath, { force: true });
      } catch (err) {
        if ((err as { code?: string }).code !== "EEXIST") {
          throw new MagikError("StorageWriteFailed", `cannot lock the image index`, {
            cause: err,
            details: { path: lockPath },
          });
        }
      }
      const age = Date.now() - (statSync(lockPath, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
      if (age > LOCK_STALE_MS || holderIsGone(lockPath)) rmSync(lockPath, { force: true });
      else if (Date.now() > deadline) {
        throw new MagikError("Timeout", "the image index stayed locked by another process", {
          details: { path: lockPath, waitedMs: LOCK_WAIT_MS },
        });
      } else await Bun.sleep(20);
    }
  }
}

/** A lock whose writer died (its pid is gone) is stale at once; an empty one may be mid-write, so it is not. */
function holderIsGone(lockPath: string): boolean {
  let pid: number;
  try {
    pid = Number(readFileSync(lockPath, "utf8"));
  } catch {
    return false;
  }
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as { code?: string }).code === "ESRCH";
  }
}
