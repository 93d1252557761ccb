import { randomBytes } from "node:crypto";
import { readdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";

/**
 * Temp files carry the writer's pid so that opening a store shared by several processes removes only what a dead
 * process left behind, never a put still in progress elsewhere.
 */
const TEMP_NAME = /^([1-9][0-9]*)-[0-9a-f]{16}\.tmp$/;

export function tempFileName(pid: number = process.pid): string {
  return `${pid}-${randomBytes(8).toString("hex")}.tmp`;
}

/** Pid that wrote a temp file, or undefined when the name is not one of ours. */
export function tempFileOwner(name: string): number | undefined {
  const match = TEMP_NAME.exec(name);
  return match ? Number(match[1]) : undefined;
}

export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as { code?: string }).code === "EPERM";
  }
}

export interface StaleTempPolicy {
  /** Temp files untouched for this long are stale even if their pid is alive (pids get reused). */
  maxAgeMs: number;
  now?: number;
}

/** Removes temp files whose writer is gone, or that nobody wrote to for `maxAgeMs`. Returns the names removed. */
export async function removeStaleTempFiles(tmpDir: string, policy: StaleTempPolicy): Promise<string[]> {
  const now = policy.now ?? Date.now();
  const removed: string[] = [];
  for (const name of await readdir(tmpDir)) {
    const path = join(tmpDir, name);
    const owner = tempFileOwner(name);
    let stale = owner === undefined || !isProcessAlive(owner);
    if (!stale) {
      const info = await stat(path).catch(() => undefined);
      stale = info !== undefined && now - info.mtimeMs > policy.maxAgeMs;
    }
    if (!stale) continue;
    // force: another process opening the store at the same moment may have removed it first.
    await rm(path, { force: true, recursive: true });
    removed.push(name);
  }
  return removed;
}
