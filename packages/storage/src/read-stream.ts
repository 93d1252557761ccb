import { open } from "node:fs/promises";

const CHUNK_SIZE = 1024 * 1024;

/**
 * Opens the file now (so a missing blob fails here, not on first read) and streams it in large chunks; the file
 * handle is closed at the end, on error and on cancel.
 */
export async function openBlobStream(path: string): Promise<ReadableStream<Uint8Array>> {
  const handle = await open(path, "r");
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await handle.close();
  };
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const buffer = new Uint8Array(CHUNK_SIZE);
          const { bytesRead } = await handle.read(buffer, 0, CHUNK_SIZE, null);
          if (bytesRead === 0) {
            await close();
            controller.close();
            return;
          }
          controller.enqueue(bytesRead === CHUNK_SIZE ? buffer : buffer.subarray(0, bytesRead));
        } catch (err) {
          await close().catch(() => {});
          controller.error(err);
        }
      },
      async cancel() {
        await close();
      },
    },
    { highWaterMark: 0 },
  );
}
