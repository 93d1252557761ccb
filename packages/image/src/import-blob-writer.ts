import type { Limits } from "@magikrun/spec";
import type { ImageStore } from "./image-store.ts";

/** Stores blobs and remembers the ones this import created, so a failed import can take them back. */
export class BlobWriter {
  readonly created: string[] = [];
  constructor(
    private readonly store: ImageStore,
    private readonly limits: Limits,
  ) {}

  async put(
    source: Uint8Array | ReadableStream<Uint8Array>,
    digest?: string,
    size?: number,
  ): Promise<{ digest: string; size: number }> {
    const result = await this.store.blobs.put(source, {
      maxSize: this.limits.MAX_LAYER_SIZE,
      ...(digest !== undefined ? { digest } : {}),
      ...(size !== undefined ? { size } : {}),
    });
    if (!result.existed) this.created.push(result.digest);
    return result;
  }

  async rollback(): Promise<void> {
    for (const digest of this.created) await this.store.blobs.delete(digest).catch(() => false);
  }
}
