// Runs a WASI command under Node's uvwasi-based node:wasi, for behaviour parity checks.
// usage: node node-wasi-runner.cjs <module.wasm> <sandbox dir> <args...>; env comes from WASI_ENV_* variables.
const { WASI } = require("node:wasi");
const { readFileSync } = require("node:fs");

const [wasmPath, sandbox, ...args] = process.argv.slice(2);
const env = {};
for (const [k, v] of Object.entries(process.env)) if (k.startsWith("WASI_ENV_")) env[k.slice(9)] = v;
const wasi = new WASI({
  version: "preview1",
  args,
  env,
  preopens: { "/sandbox": sandbox },
  returnOnExit: true,
});
const instance = new WebAssembly.Instance(
  new WebAssembly.Module(readFileSync(wasmPath)),
  wasi.getImportObject(),
);
const code = wasi.start(instance);
process.stdout.write(`exit=${code}\n`);
