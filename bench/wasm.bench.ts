/**
 * `bun run bench wasm`: (a) cold start to exit of a C hello world through the WasmRuntime API, first start of a
 * module (rewrite + compile) against a second start of the same module (cache hit); (b) a CPU-bound C program
 * metered against unmetered; (c) the same program under Node's node:wasi, run from this script.
 * (a) is wall-clock time. (b) is CPU time of the process (user + system, all threads) while it does nothing
 * else, which shared CI machines disturb far less than wall-clock time. (c) is given both ways: JSC compiles on
 * background threads more than V8 does, which costs CPU time but not time to the result.
 */
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { InstrumentCache, WasmInstance, WasmRuntime, WorkerPool } from "@magikrun/runtime-wasm";
import { compileC } from "@magikrun/runtime-wasm/testing/clang";
import type { WasmBundle } from "@magikrun/spec";
import { type Benchmark, type Figure, median, timeMs } from "./lib.ts";

const COLD_RUNS = 15;
const CPU_RUNS = 15;
const SETTLE_MS = 30;
const CPU_SCALE = "6";

/** A distinct copy of a module (an extra custom section), so each first start misses every cache. */
function variant(bytes: Uint8Array, n: number): Uint8Array {
  const name = new TextEncoder().encode(`bench-${n}`);
  const payload = new Uint8Array([name.length, ...name]);
  return new Uint8Array([...bytes, 0, payload.length, ...payload]);
}

async function coldStart(dir: string, hello: Uint8Array): Promise<Figure[]> {
  const runtime = new WasmRuntime({ root: join(dir, "root"), cacheDir: false });
  const bundle = (modulePath: string): WasmBundle => ({
    kind: "wasm",
    path: dir,
    modulePath,
    args: ["hello"],
    env: [],
    preopens: [],
  });
  const runOnce = async (id: string, modulePath: string) => {
    await runtime.create({ id, bundle: bundle(modulePath), stdio: { stdout: "ignore" } });
    await runtime.start(id);
    const exit = await runtime.wait(id);
    if (exit.code !== 0) throw new Error(`hello exited ${JSON.stringify(exit)}`);
    await runtime.delete(id);
  };
  const fresh = join(dir, "fresh.wasm");
  writeFileSync(fresh, variant(hello, -1));
  const veryFirst = await timeMs(() => runOnce("fresh", fresh));
  const first: number[] = [];
  const second: number[] = [];
  for (let i = 0; i < COLD_RUNS; i++) {
    const path = join(dir, `hello-${i}.wasm`);
    writeFileSync(path, variant(hello, i));
    // Idle time between starts, not measured: the runtime boots its spare Worker in the background meanwhile.
    await Bun.sleep(250);
    first.push(await timeMs(() => runOnce(`a${i}`, path)));
    await Bun.sleep(250);
    second.push(await timeMs(() => runOnce(`b${i}`, path)));
  }
  runtime.close();
  const target = { name: "target", value: 10 };
  return [
    { name: "first start in a new runtime (worker boot incl.)", value: veryFirst, unit: "ms" },
    {
      name: "cold start to exit, first start (median)",
      value: median(first),
      unit: "ms",
      reference: target,
      target: { ratio: 1, better: "lower" },
    },
    {
      name: "cold start to exit, second start (median)",
      value: median(second),
      unit: "ms",
      reference: target,
      target: { ratio: 1, better: "lower" },
    },
    {
      name: "second start vs first start",
      value: median(second),
      unit: "ms",
      reference: { name: "first", value: median(first) },
      target: { ratio: 1, better: "lower" },
    },
  ];
}

/**
 * Instantiation is outside the figures on all sides: only the guest's run, start to exit, is compared. The three
 * runs (unmetered, metered, node:wasi) are interleaved in rotating order, each warmed up once first, so that a
 * noisy neighbour or a frequency change hits all of them alike.
 */
async function cpuRuns(cpu: Uint8Array, cpuPath: string, dir: string): Promise<Figure[]> {
  const cache = new InstrumentCache();
  // No spares: a Worker booting in the background would add its CPU time to the measured runs.
  const pool = new WorkerPool({ spares: 0 });
  const metered = await cache.prepare(cpu, { maxMemoryPages: 65_536, meter: true });
  const unmetered = await cache.prepare(cpu, { maxMemoryPages: 65_536, meter: false });
  const devNull = openSync("/dev/null", "w");
  const runOnce = async (prepared: typeof metered, fuel: number | null): Promise<Run> => {
    const instance = new WasmInstance(pool.take());
    await instance.init({
      module: prepared.module,
      importedMemories: prepared.importedMemories,
      args: ["cpu", CPU_SCALE],
      env: [],
      preopens: [],
      stdin: "ignore",
      stdout: devNull,
      stderr: 2,
      fuel,
    });
    const start = process.cpuUsage();
    const startedAt = Bun.nanoseconds();
    instance.start();
    const exit = await instance.exit;
    if (exit.code !== 0) throw new Error(`cpu exited ${JSON.stringify(exit)}`);
    return { wall: (Bun.nanoseconds() - startedAt) / 1e6, cpu: cpuMs(start) };
  };
  const node = await NodeWasi.spawn(cpuPath, dir);
  const sides: { name: string; run: () => Promise<Run>; runs: Run[] }[] = [
    { name: "unmetered", run: () => runOnce(unmetered, null), runs: [] },
    { name: "metered", run: () => runOnce(metered, 1e15), runs: [] },
  ];
  if (node) sides.push({ name: "node:wasi", run: () => node.run(), runs: [] });
  // Warm-up: first runs pay for the tiering of the engines' compilers.
  for (const side of sides) await side.run();
  for (let i = 0; i < CPU_RUNS; i++) {
    for (let k = 0; k < sides.length; k++) {
      const side = sides[(i + k) % sides.length]!;
      // A pause first: compiler threads still busy after the previous run (either engine's) would otherwise
      // take CPU from this one.
      await Bun.sleep(SETTLE_MS);
      side.runs.push(await side.run());
    }
  }
  node?.close();
  pool.close();
  closeSync(devNull);
  const [without, withFuel, underNode] = sides.map((side) => ({
    wall: median(side.runs.map((r) => r.wall)),
    cpu: median(side.runs.map((r) => r.cpu)),
  }));
  const figures: Figure[] = [
    {
      name: "cpu.c metered, CPU time start to exit (median)",
      value: withFuel!.cpu,
      unit: "ms",
      reference: { name: "unmetered", value: without!.cpu },
      target: { ratio: 1.15, better: "lower" },
    },
    {
      name: "cpu.c metered, wall start to exit (median)",
      value: withFuel!.wall,
      unit: "ms",
      reference: { name: "unmetered", value: without!.wall },
    },
  ];
  if (underNode) {
    figures.push(
      {
        name: "cpu.c metered vs node:wasi, wall (median)",
        value: withFuel!.wall,
        unit: "ms",
        reference: { name: "node:wasi", value: underNode.wall },
        target: { ratio: 1, better: "lower" },
      },
      {
        name: "cpu.c unmetered vs node:wasi, wall (median)",
        value: without!.wall,
        unit: "ms",
        reference: { name: "node:wasi", value: underNode.wall },
      },
      {
        name: "cpu.c metered vs node:wasi, CPU time (median)",
        value: withFuel!.cpu,
        unit: "ms",
        reference: { name: "node:wasi", value: underNode.cpu },
      },
    );
  }
  return figures;
}

interface Run {
  wall: number;
  cpu: number;
}

function cpuMs(since: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1000;
}

/**
 * Node's node:wasi in a child process that stays up and runs the program once per line it reads, so its runs
 * interleave with ours. Each run compiles the module afresh and instantiates it (outside the figures; reusing
 * one Module measured the same), times wasi.start to its return, CPU and wall, inside Node, and then collects
 * garbage: without that, Node 20 aborted after 14-29 instances in one process here.
 */
class NodeWasi {
  readonly #lines: AsyncIterator<string>;

  private constructor(readonly child: ReturnType<typeof Bun.spawn<"pipe", "pipe", "ignore">>) {
    this.#lines = readLines(child.stdout);
  }

  static async spawn(cpuPath: string, dir: string): Promise<NodeWasi | undefined> {
    const script = join(dir, "node-wasi.mjs");
    writeFileSync(
      script,
      `import { WASI } from "node:wasi";
import { openSync, readFileSync } from "node:fs";
import { createInterface } from "node:readline";
const devNull = openSync("/dev/null", "w");
const bytes = readFileSync(${JSON.stringify(cpuPath)});
console.log("ready");
for await (const _ of createInterface({ input: process.stdin })) {
  const wasi = new WASI({ version: "preview1", args: ["cpu", ${JSON.stringify(CPU_SCALE)}], env: {}, returnOnExit: true, stdout: devNull });
  const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), wasi.getImportObject());
  const start = process.cpuUsage();
  const startedAt = performance.now();
  if (wasi.start(instance) !== 0) throw new Error("cpu failed");
  const used = process.cpuUsage(start);
  const wall = performance.now() - startedAt;
  globalThis.gc();
  console.log(JSON.stringify({ cpu: (used.user + used.system) / 1000, wall }));
}
`,
    );
    let child: ReturnType<typeof Bun.spawn<"pipe", "pipe", "ignore">>;
    try {
      child = Bun.spawn(["node", "--no-warnings", "--expose-gc", script], {
        stdin: "pipe",
        stdout: "pipe",
        stderr: "ignore",
      });
    } catch {
      return undefined; // no node on this machine
    }
    const node = new NodeWasi(child);
    const first = await node.#lines.next();
    if (first.done || first.value !== "ready") {
      child.kill();
      return undefined;
    }
    return node;
  }

  async run(): Promise<Run> {
    this.child.stdin.write("\n");
    this.child.stdin.flush();
    const line = await this.#lines.next();
    if (line.done) throw new Error("node:wasi run failed");
    return JSON.parse(line.value) as Run;
  }

  close(): void {
    this.child.stdin.end();
    this.child.kill();
  }
}

async function* readLines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffered = "";
  for await (const chunk of stream) {
    buffered += decoder.decode(chunk, { stream: true });
    let at = buffered.indexOf("\n");
    while (at !== -1) {
      yield buffered.slice(0, at);
      buffered = buffered.slice(at + 1);
      at = buffered.indexOf("\n");
    }
  }
}

const bench: Benchmark = async () => {
  const dir = mkdtempSync(join(tmpdir(), "magikrun-bench-wasm-"));
  try {
    const hello = readFileSync(compileC("puts.c", join(dir, "hello.wasm")));
    const cpuPath = compileC("cpu.c", join(dir, "cpu.wasm"));
    const figures = [
      ...(await coldStart(dir, hello)),
      ...(await cpuRuns(readFileSync(cpuPath), cpuPath, dir)),
    ];
    return { title: "wasm: cold start, fuel overhead, against node:wasi", figures };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
};

export default bench;
