/**
 * `bun run bench image`: pull + unpack of the busybox image from a local registry into a runnable OCI bundle,
 * against `skopeo copy docker://… oci:…` followed by `umoci unpack` of the same image, interleaved in the same run,
 * each round into an empty root (cold cache). Targets: ours <= 0.5x theirs; a second container's rootfs from the
 * same image (an overlay mount over the cached layers) under 5 ms.
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BundleBuilder, ImageStore, LayerCache, pullImage } from "@magikrun/image";
import { buildBusyboxImage, hasBusybox, pushFixture, startRegistry } from "@magikrun/image/test-support";
import { type Figure, median, timeMs } from "./lib.ts";

const ROUNDS = 9;
const SECOND_ROUNDS = 20;

function run(cmd: string[]): void {
  const proc = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" });
  if (proc.exitCode !== 0) throw new Error(`${cmd.join(" ")} failed: ${proc.stderr.toString()}`);
}

export default async function imageBench(): Promise<{ title: string; figures: Figure[] }> {
  if (!hasBusybox()) throw new Error("/bin/busybox is missing: install busybox-static");
  if (process.getuid?.() !== 0) throw new Error("the image benchmark mounts overlayfs: run it as root");
  const dir = mkdtempSync(join(tmpdir(), "magikrun-bench-image-"));
  const registry = await startRegistry();
  const builders: BundleBuilder[] = [];
  const ids: Array<[BundleBuilder, string]> = [];
  try {
    const work = join(dir, "fixture");
    mkdirSync(work);
    await pushFixture(registry, "bench/busybox", "latest", buildBusyboxImage({ workDir: work }));
    const reference = `${registry.host}/bench/busybox:latest`;
    const oursMs: number[] = [];
    const pullMs: number[] = [];
    const theirsMs: number[] = [];
    const secondMs: number[] = [];
    let mode = "";
    // Round 0 warms the JIT, the page cache and the registry for both sides and is not counted.
    for (let round = 0; round <= ROUNDS; round++) {
      const ours = async () => {
        const root = join(dir, `ours-${round}`);
        let builder: BundleBuilder | undefined;
        oursMs.push(
          await timeMs(async () => {
            const pullStart = performance.now();
            const store = await ImageStore.open(root);
            const { image } = await pullImage(reference, { store, dockerConfig: false });
            pullMs.push(performance.now() - pullStart);
            builder = new BundleBuilder(new LayerCache(root, store.blobs), store.blobs);
            const bundle = await builder.buildOci(image, `first-${round}`);
            mode = builder.rootfs.info(`first-${round}`)?.mode ?? "";
            if (bundle.config.process?.args?.[0] !== "/bin/sh") throw new Error("unexpected bundle");
          }),
        );
        builders.push(builder!);
        ids.push([builder!, `first-${round}`]);
      };
      const theirs = async () => {
        const layout = join(dir, `theirs-${round}`);
        theirsMs.push(
          await timeMs(() => {
            run([
              "skopeo",
              "copy",
              "--src-tls-verify=false",
              `docker://${reference}`,
              `oci:${layout}:latest`,
            ]);
            run(["umoci", "unpack", "--image", `${layout}:latest`, join(dir, `umoci-bundle-${round}`)]);
          }),
        );
      };
      // Alternating the order keeps "runs second" from always favouring the same side.
      if (round % 2) {
        await theirs();
        await ours();
      } else {
        await ours();
        await theirs();
      }
    }
    oursMs.shift();
    theirsMs.shift();
    pullMs.shift();
    const builder = builders[builders.length - 1]!;
    const store = await ImageStore.open(builder.root);
    const { image } = await pullImage(reference, { store, dockerConfig: false });
    const secondBundleMs: number[] = [];
    for (let i = 0; i <= SECOND_ROUNDS; i++) {
      const id = `second-${i}`;
      secondMs.push(await timeMs(() => builder.rootfs.assemble(image, id)));
      builder.rootfs.release(id);
      secondBundleMs.push(await timeMs(() => builder.buildOci(image, id)));
      ids.push([builder, id]);
    }
    secondMs.shift();
    secondBundleMs.shift();
    const theirsMedian = median(theirsMs);
    return {
      title: `image: busybox from a local registry to an OCI bundle (median of ${ROUNDS} cold rounds; rootfs by ${mode})`,
      figures: [
        {
          name: "magikrun pull + unpack + bundle (cold)",
          value: median(oursMs),
          unit: "ms",
          reference: { name: "skopeo copy + umoci unpack", value: theirsMedian },
          target: { ratio: 0.5, better: "lower" },
        },
        { name: "  of which pull (registry to blob store)", value: median(pullMs), unit: "ms" },
        {
          name: `second container's rootfs (median of ${SECOND_ROUNDS})`,
          value: median(secondMs),
          unit: "ms",
          reference: { name: "target", value: 5 },
          target: { ratio: 1, better: "lower" },
        },
        { name: "  whole bundle (rootfs + config.json)", value: median(secondBundleMs), unit: "ms" },
      ],
    };
  } finally {
    for (const [b, id] of ids) b.remove(id);
    await registry.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
