/**
 * `bun run bench storage`: BlobStore.put of a 256 MiB stream (hash + write + fsync + commit) against `sha256sum`
 * of the same file (hash only), measured interleaved in the same run, the file in the page cache for both. Target: put >= 0.9x sha256sum throughput.
 */
import { randomFillSync } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BlobStore } from "@magikrun/storage";
import { type Figure, median, timeMs } from "./lib.ts";

const SIZE = 256 * 1024 * 1024;
const ROUNDS = 5;

function mbPerSecond(ms: number): number {
  return SIZE / 1e6 / (ms / 1000);
}

/** A fetch-body-like source: the file in 64 KiB chunks (Bun.file streams hand out 512 KiB). */
async function* smallChunks(path: string): AsyncGenerator<Uint8Array> {
  for await (const chunk of Bun.file(path).stream()) {
    for (let offset = 0; offset < chunk.length; offset += 65536) yield chunk.subarray(offset, offset + 65536);
  }
}

export default async function storageBench(): Promise<{ title: string; figures: Figure[] }> {
  const dir = await mkdtemp(join(tmpdir(), "magikrun-bench-storage-"));
  try {
    const file = join(dir, "blob.bin");
    await Bun.write(file, randomFillSync(new Uint8Array(SIZE)));
    const store = await BlobStore.open(join(dir, "root"));
    let expected = "";
    const sha256sumMs: number[] = [];
    const putMs: number[] = [];
    const putSmallMs: number[] = [];
    // Round 0 warms the JIT and the page cache for both sides and is not counted.
    for (let round = 0; round <= ROUNDS; round++) {
      sha256sumMs.push(
        await timeMs(async () => {
          const proc = Bun.spawn(["sha256sum", file], { stdout: "pipe" });
          const out = await new Response(proc.stdout).text();
          if ((await proc.exited) !== 0) throw new Error("sha256sum failed");
          expected = `sha256:${out.slice(0, 64)}`;
        }),
      );
      const variants = [
        [putMs, () => Bun.file(file).stream()],
        [putSmallMs, () => smallChunks(file)],
      ] as const;
      // Alternating the order keeps "runs right after sha256sum" from always favouring the same variant.
      for (const [times, source] of round % 2 ? [...variants].reverse() : variants) {
        let digest = "";
        times.push(await timeMs(async () => ({ digest } = await store.put(source()))));
        if (digest !== expected) throw new Error(`put stored ${digest}, sha256sum says ${expected}`);
        await store.delete(digest);
      }
    }
    for (const times of [sha256sumMs, putMs, putSmallMs]) times.shift();
    const reference = { name: "sha256sum", value: mbPerSecond(median(sha256sumMs)) };
    return {
      title: `storage: BlobStore.put of a ${SIZE / 1024 / 1024} MiB stream (median of ${ROUNDS}, fsync included)`,
      figures: [
        {
          name: "put, Bun.file stream (512 KiB chunks)",
          value: mbPerSecond(median(putMs)),
          unit: "MB/s",
          reference,
          target: { ratio: 0.9, better: "higher" },
        },
        {
          name: "put, 64 KiB chunks (fetch-like)",
          value: mbPerSecond(median(putSmallMs)),
          unit: "MB/s",
          reference,
        },
        // Best rounds: what each side does when the (shared, noisy) machine leaves it alone.
        {
          name: "put, 512 KiB chunks, best round",
          value: mbPerSecond(Math.min(...putMs)),
          unit: "MB/s",
          reference: { name: "sha256sum best", value: mbPerSecond(Math.min(...sha256sumMs)) },
        },
      ],
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
