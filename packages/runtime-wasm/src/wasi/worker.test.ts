import { rmSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { buildC, tempDir } from "./test-support.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function inWorker(
  program: string,
  args: string[],
): Promise<{ code: number; stdout: string; kernelConfined: boolean }> {
  const sandbox = tempDir("worker");
  dirs.push(sandbox);
  const worker = new Worker(new URL("./testdata/worker-entry.ts", import.meta.url).href);
  return new Promise((resolve, reject) => {
    worker.onmessage = (event) => {
      resolve(event.data);
      worker.terminate();
    };
    worker.onerror = (event) => {
      reject(new Error(event.message));
      worker.terminate();
    };
    worker.postMessage({ wasm: buildC(program), args, sandbox });
  });
}

describe("inside a Worker (as the engine runs it)", () => {
  it("blocks in poll_oneoff with Atomics.wait and keeps kernel confinement", async () => {
    const result = await inWorker("time", ["t", "sleep"]);
    expect(result).toEqual({
      code: 0,
      stdout: "nanosleep rc=0 at least 50ms=1\npoll timeout rc=0 at least 30ms=1\nsched_yield=0\n",
      kernelConfined: true,
    });
  });

  it("runs file-system calls", async () => {
    const result = await inWorker("files", ["files", "readdir", "40"]);
    expect(result.stdout).toBe("files=40 dirs=1 dots=2\nafter seekdir=23\nok\n");
    expect(result.code).toBe(0);
  });
});
