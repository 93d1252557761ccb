import { type Descriptor, MagikError } from "@magikrun/spec";
import type { BlobStore } from "@magikrun/storage";
import type { RegistryClient } from "./registry/client.ts";
import { abortError, backoffMs, sleep } from "./registry/transport.ts";

export interface LayerProgress {
  type: "layer";
  digest: string;
  size: number;
  /** Bytes stored so far. */
  current: number;
  status: "exists" | "downloading" | "retrying" | "done";
}

export interface DownloadOptions {
  maxSize: number;
  signal: AbortSignal;
  retries: number;
  retryBaseMs: number;
  onProgress?: (event: LayerProgress) => void;
}

/**
 * A transfer worth retrying: the connection broke (the body stream errored, which the store passes through
 * unchanged) or the body ended early. A complete body with the wrong digest is not retried: it is the content
 * the registry has, and asking again only repeats it.
 */
function isTransient(err: unknown): boolean {
  if (!(err instanceof MagikError)) return true;
  if (err.code !== "DigestMismatch")
    return err.code === "ImagePullFailed" && Number(err.details.status) >= 500;
  const { expectedSize, actualSize } = err.details;
  return typeof expectedSize === "number" && typeof actualSize === "number" && actualSize < expectedSize;
}

/**
 * Streams one blob into the store, verified against its descriptor (digest and size) as it arrives. Returns false
 * when the blob was already stored. A failed transfer leaves nothing in the store.
 */
export async function downloadBlob(
  client: RegistryClient,
  blobs: BlobStore,
  repository: string,
  descriptor: Descriptor,
  options: DownloadOptions,
): Promise<boolean> {
  const { digest, size } = descriptor;
  const progress = (current: number, status: LayerProgress["status"]) =>
    options.onProgress?.({ type: "layer", digest, size, current, status });
  if (await blobs.has(digest)) {
    progress(size, "exists");
    return false;
  }
  for (let attempt = 0; ; attempt++) {
    try {
      progress(0, "downloading");
      const res = await client.openBlob(repository, digest);
      if (!res.body)
        throw new MagikError("ImagePullFailed", `blob ${digest} came without a body`, {
          details: { digest },
        });
      const result = await blobs.put(res.body, {
        digest,
        size,
        maxSize: options.maxSize,
        signal: options.signal,
        onProgress: (written) => progress(written, "downloading"),
      });
      progress(size, result.existed ? "exists" : "done");
      return !result.existed;
    } catch (err) {
      if (options.signal.aborted) throw abortError(options.signal);
      if (attempt >= options.retries || !isTransient(err)) {
        if (err instanceof MagikError) {
          err.details.digest ??= digest;
          throw err;
        }
        throw new MagikError(
          "ImagePullFailed",
          `downloading blob ${digest} failed: ${(err as Error)?.message ?? err}`,
          {
            details: { digest, attempts: attempt + 1 },
            cause: err,
          },
        );
      }
      progress(0, "retrying");
      await sleep(backoffMs(attempt, options.retryBaseMs), options.signal);
    }
  }
}
