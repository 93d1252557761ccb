/**
 * `native`: create + start + wait + delete of /bin/true from a busybox bundle, (a) through the TypeScript API
 * in this process and (b) through the CLI (`magikrun run`, one process), against `runc run` of the same bundle.
 * The three are interleaved in one run so that machine noise hits them alike. Also the CLI's peak RSS.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadBundle, NativeRuntime } from "../packages/runtime-native/src/index.ts";
import { haveBusybox, makeBundle, RUNC } from "../packages/runtime-native/src/test-support/busybox-bundle.ts";
import { type Benchmark, median, timeMs } from "./lib.ts";

const ROUNDS = Number(process.env.NATIVE_BENCH_ROUNDS ?? 15);
const CLI = new URL("../apps/cli/src/main.ts", import.meta.url).pathname;

const bench: Benchmark = async () => {
  if (process.getuid?.() !== 0 || !haveBusybox() || !existsSync(RUNC)) {
    throw new Error("the native benchmark needs root, busybox-static and runc");
  }
  const bundle = makeBundle(["/bin/true"], (c) => {
    c.process!.terminal = false;
  });
  const root = mkdtempSync(join(tmpdir(), "magikrun-bench-"));
  const runcRoot = mkdtempSync(join(tmpdir(), "magikrun-bench-runc-"));
  const rt = new NativeRuntime({ root: join(root, "api"), onWarning: () => {} });
  const api: number[] = [];
  const cli: number[] = [];
  const runc: number[] = [];
  let cliRss = 0;
  let n = 0;
  const quiet = { stdio: ["ignore", "ignore", "inherit"] as ["ignore", "ignore", "inherit"] };
  try {
    const oci = loadBundle(bundle.dir);
    for (let round = -2; round < ROUNDS; round++) {
      // Two warm-up rounds (page cache, launcher build, JIT), not counted.
      const a = await timeMs(async () => {
        const id = `api-${n++}`;
        await rt.create({ id, bundle: oci, stdio: { stdin: "ignore", stdout: "ignore" } });
        await rt.start(id);
        const exit = await rt.wait(id);
        if (exit.code !== 0) throw new Error(`api container exited ${exit.code}`);
        await rt.delete(id);
      });
      let rss = 0;
      const c = await timeMs(() => {
        const r = Bun.spawnSync(
          ["bun", CLI, "--root", join(root, "cli"), "run", "-b", bundle.dir, `cli-${n++}`],
          quiet,
        );
        if (r.exitCode !== 0) throw new Error(`magikrun run exited ${r.exitCode}`);
        rss = r.resourceUsage.maxRSS;
      });
      const r = await timeMs(() => {
        const res = Bun.spawnSync(
          [RUNC, "--root", runcRoot, "run", "--bundle", bundle.dir, `runc-${n++}`],
          quiet,
        );
        if (res.exitCode !== 0) throw new Error(`runc run exited ${res.exitCode}`);
      });
      if (round < 0) continue;
      api.push(a);
      cli.push(c);
      runc.push(r);
      cliRss = Math.max(cliRss, rss);
    }
  } finally {
    bundle.cleanup();
    rmSync(root, { recursive: true, force: true });
    rmSync(runcRoot, { recursive: true, force: true });
  }
  const reference = { name: "runc run", value: median(runc) };
  return {
    title: `native: create+start+wait+delete of /bin/true (busybox bundle), medians of ${ROUNDS} interleaved rounds`,
    figures: [
      {
        name: "API (NativeRuntime, in process)",
        value: median(api),
        unit: "ms",
        reference,
        target: { ratio: 0.1, better: "lower" },
      },
      {
        name: "CLI (magikrun run)",
        value: median(cli),
        unit: "ms",
        reference,
        target: { ratio: 0.5, better: "lower" },
      },
      { name: "runc run", value: median(runc), unit: "ms" },
      { name: "CLI peak RSS (magikrun run)", value: cliRss / 1024 / 1024, unit: "MiB" },
    ],
  };
};

export default bench;
