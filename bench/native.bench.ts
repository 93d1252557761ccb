/**
 * `native`: create + start + wait + delete of /bin/true from a busybox bundle, (a) through the TypeScript API
 * in this process and (b) through the CLI binary (`magikrun run`, one process), against `runc run` of the same
 * bundle. The variants are interleaved in one run, in an order that rotates every round, so that machine noise
 * hits them alike; medians are reported. Also the CLI's peak RSS, and `bun -e 0` (the floor of any Bun CLI)
 * measured in the same rounds, so that a loaded machine shows up in the figures.
 *
 * The CLI binary is apps/cli/dist/magikrun, the executable `scripts/setup.sh` builds (apps/cli/scripts/build.ts:
 * `bun build --compile --bytecode`, launcher beside it); when it is missing the benchmark builds one into a temp
 * dir. `bun apps/cli/src/main.ts` (the CLI run from its sources) is measured as an extra figure.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NativeRuntime } from "@magikrun/runtime-native";
import { loadBundle } from "@magikrun/runtime-native/bundle";
import { haveBusybox, makeBundle, RUNC } from "@magikrun/runtime-native/test-support";
import { type Benchmark, type Figure, median, timeMs } from "./lib.ts";

const ROUNDS = Number(process.env.NATIVE_BENCH_ROUNDS ?? 15);
const CLI = new URL("../apps/cli/src/main.ts", import.meta.url).pathname;
const SHIPPED = new URL("../apps/cli/dist/magikrun", import.meta.url).pathname;
const BUILD = new URL("../apps/cli/scripts/build.ts", import.meta.url).pathname;

/** The shipped executable, or one built into `dir` when `scripts/setup.sh` has not built it. */
function cliBinary(dir: string): string {
  if (existsSync(SHIPPED)) return SHIPPED;
  const r = Bun.spawnSync(["bun", BUILD, "--outdir", dir], { stdio: ["ignore", "ignore", "pipe"] });
  if (r.exitCode !== 0) throw new Error(`cannot build the CLI binary: ${r.stderr.toString().trim()}`);
  return join(dir, "magikrun");
}

const bench: Benchmark = async () => {
  if (process.getuid?.() !== 0 || !haveBusybox() || !existsSync(RUNC)) {
    throw new Error("the native benchmark needs root, busybox-static and runc");
  }
  const bundle = makeBundle(["/bin/true"], (c) => {
    c.process!.terminal = false;
  });
  const root = mkdtempSync(join(tmpdir(), "magikrun-bench-"));
  const runcRoot = mkdtempSync(join(tmpdir(), "magikrun-bench-runc-"));
  const binary = cliBinary(root);
  const rt = new NativeRuntime({ root: join(root, "api"), onWarning: () => {} });
  const oci = loadBundle(bundle.dir);
  const times: Record<string, number[]> = {};
  let n = 0;
  const env = { ...process.env };
  const spawn = (name: string, argv: string[]) => {
    const r = Bun.spawnSync(argv, { stdio: ["ignore", "ignore", "inherit"], env });
    if (r.exitCode !== 0) throw new Error(`${name} exited ${r.exitCode}`);
  };
  const variants: [string, () => Promise<void> | void][] = [
    [
      "api",
      async () => {
        const id = `api-${n++}`;
        await rt.create({ id, bundle: oci, stdio: { stdin: "ignore", stdout: "ignore" } });
        await rt.start(id);
        const exit = await rt.wait(id);
        if (exit.code !== 0) throw new Error(`api container exited ${exit.code}`);
        await rt.delete(id);
      },
    ],
    ["cli", () => spawn("cli", [binary, "--root", join(root, "cli"), "run", "-b", bundle.dir, `cli-${n++}`])],
    [
      "sources",
      () =>
        spawn("sources", ["bun", CLI, "--root", join(root, "cli"), "run", "-b", bundle.dir, `src-${n++}`]),
    ],
    ["runc", () => spawn("runc", [RUNC, "--root", runcRoot, "run", "--bundle", bundle.dir, `runc-${n++}`])],
    ["bun", () => spawn("bun", ["bun", "-e", "0"])],
  ];
  for (const [name] of variants) times[name] = [];
  // Peak RSS from GNU time's %M (wait4 of that one child): Bun's resourceUsage.maxRSS is the maximum over all
  // the children reaped so far (RUSAGE_CHILDREN-like), so it cannot tell runc from the CLI.
  const rss: Record<string, number> = {};
  const measureRss = (name: string, argv: string[]) => {
    if (!existsSync("/usr/bin/time")) return;
    for (let i = 0; i < 3; i++) {
      const r = Bun.spawnSync(
        ["/usr/bin/time", "-f", "%M", ...argv.map((a) => a.replace("{}", `rss-${n++}`))],
        {
          stdio: ["ignore", "ignore", "pipe"],
          env,
        },
      );
      const kib = Number(r.stderr.toString().trim().split("\n").at(-1));
      if (r.exitCode === 0 && kib > 0) rss[name] = Math.max(rss[name] ?? 0, kib * 1024);
    }
  };
  try {
    for (let round = -2; round < ROUNDS; round++) {
      // Two warm-up rounds (page cache, launcher build, JIT), not counted.
      const k = ((round % variants.length) + variants.length) % variants.length;
      for (const [name, fn] of [...variants.slice(k), ...variants.slice(0, k)]) {
        const ms = await timeMs(fn);
        if (round >= 0) times[name]!.push(ms);
      }
    }
    measureRss("cli", [binary, "--root", join(root, "cli"), "run", "-b", bundle.dir, "{}"]);
    measureRss("sources", ["bun", CLI, "--root", join(root, "cli"), "run", "-b", bundle.dir, "{}"]);
    measureRss("runc", [RUNC, "--root", runcRoot, "run", "--bundle", bundle.dir, "{}"]);
  } finally {
    bundle.cleanup();
    rmSync(root, { recursive: true, force: true });
    rmSync(runcRoot, { recursive: true, force: true });
  }
  const reference = { name: "runc run", value: median(times.runc!) };
  const mib = (bytes: number | undefined) => (bytes ?? 0) / 1024 / 1024;
  const figures: Figure[] = [
    {
      name: "API (NativeRuntime, in process)",
      value: median(times.api!),
      unit: "ms",
      reference,
      target: { ratio: 0.1, better: "lower" },
    },
    {
      name: "CLI (apps/cli/dist/magikrun run)",
      value: median(times.cli!),
      unit: "ms",
      reference,
      target: { ratio: 0.5, better: "lower" },
    },
    {
      name: "CLI from sources (bun apps/cli/src/main.ts run)",
      value: median(times.sources!),
      unit: "ms",
      reference,
    },
  ];
  figures.push(
    { name: "runc run", value: median(times.runc!), unit: "ms" },
    { name: "bun -e 0 (floor of a Bun CLI)", value: median(times.bun!), unit: "ms", reference },
  );
  if (rss.cli) figures.push({ name: "CLI peak RSS (magikrun run)", value: mib(rss.cli), unit: "MiB" });
  if (rss.sources) figures.push({ name: "CLI from sources peak RSS", value: mib(rss.sources), unit: "MiB" });
  if (rss.runc) figures.push({ name: "runc run peak RSS", value: mib(rss.runc), unit: "MiB" });
  return {
    title: `native: create+start+wait+delete of /bin/true (busybox bundle), medians of ${ROUNDS} rounds, order rotating`,
    figures,
  };
};

export default bench;
