// Runs one WASI module inside a Worker, the way the engine does, and posts back its exit code and output.
import { Wasi } from "../wasi.ts";

declare const self: Worker;

self.onmessage = (event: MessageEvent<{ wasm: Uint8Array; args: string[]; sandbox: string }>) => {
  const { wasm, args, sandbox } = event.data;
  const chunks: string[] = [];
  const decoder = new TextDecoder();
  const wasi = new Wasi({
    args,
    env: [],
    preopens: [{ guestPath: "/sandbox", hostPath: sandbox }],
    stdout: (c) => chunks.push(decoder.decode(c)),
    stderr: (c) => chunks.push(decoder.decode(c)),
  });
  try {
    const instance = new WebAssembly.Instance(new WebAssembly.Module(wasm), wasi.imports);
    const code = wasi.start(instance);
    self.postMessage({ code, stdout: chunks.join(""), kernelConfined: wasi.kernelConfined });
  } finally {
    wasi.close();
  }
};
