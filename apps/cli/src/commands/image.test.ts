import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ImageStore } from "@magikrun/image";
import {
  buildBusyboxImage,
  type FixtureImage,
  hasBusybox,
  hasRegistry,
  makeBusyboxRootfs,
  pushFixture,
  startFaultRegistry,
  startRegistry,
  type TestRegistry,
  writeOciLayout,
} from "@magikrun/image/test-support";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI_MAIN, type CliResult, runCli } from "../test-support.ts";

describe.skipIf(!hasBusybox() || !hasRegistry())(
  "magikrun image (needs busybox-static and docker-registry)",
  () => {
    const work = mkdtempSync(join(tmpdir(), "magikrun-cli-image-"));
    const root = join(work, "root");
    let registry: TestRegistry;
    let image: FixtureImage;

    const cli = (...args: string[]): Promise<CliResult> =>
      runCli(["--store", root, ...args], { DOCKER_CONFIG: join(work, "no-docker-config") });

    beforeAll(async () => {
      image = buildBusyboxImage({ workDir: join(work, "fx") });
      registry = await startRegistry();
      await pushFixture(registry, "test/busybox", "1", image);
    });
    afterAll(async () => {
      await registry?.stop();
      rmSync(work, { recursive: true, force: true });
    });

    it("pulls with progress lines, lists, inspects, tags, removes and prunes", async () => {
      const ref = `${registry.host}/test/busybox:1`;
      const pulled = await cli("image", "pull", ref);
      expect(pulled.code, pulled.stderr).toBe(0);
      expect(pulled.stdout).toContain(image.manifest.digest);
      // stderr is not a terminal here: one line per layer state instead of redrawn bars.
      expect(pulled.stderr).toContain(`resolved ${ref} (linux/amd64)`);
      expect(pulled.stderr).toContain(`${image.layers[0]!.digest.slice(7, 19)}: done`);

      const again = await cli("--json", "image", "pull", ref);
      expect(JSON.parse(again.stdout)).toMatchObject({ reference: ref, downloaded: [] });
      expect(again.stderr).toBe("");

      const ls = JSON.parse((await cli("--json", "image", "ls")).stdout);
      expect(ls.map((r: { reference: string }) => r.reference)).toEqual([ref]);
      const text = (await cli("image", "ls")).stdout;
      expect(text).toMatch(/^REFERENCE\s+ID\s+PLATFORM/);
      expect(text).toContain(image.manifest.digest.slice(7, 19));

      const inspected = JSON.parse((await cli("image", "inspect", ref)).stdout);
      expect(inspected.config.rootfs.diff_ids).toEqual([image.layers[0]!.diffId]);

      expect((await cli("image", "tag", ref, "mine/busybox:v1")).stdout.trim()).toBe(
        "docker.io/mine/busybox:v1",
      );
      const removed = JSON.parse(
        (await cli("--json", "image", "rm", image.manifest.digest.slice(7, 19))).stdout,
      );
      expect(removed.length).toBe(2);
      const pruned = JSON.parse((await cli("--json", "image", "prune")).stdout);
      expect(pruned.blobsRemoved.length).toBe(3);
    });

    it.skipIf(!Bun.which("script"))(
      "draws a progress bar per layer on a terminal (needs util-linux script)",
      async () => {
        // `script` gives the command a pseudo-terminal, as an interactive shell would.
        const command = [
          "bun",
          CLI_MAIN,
          "--store",
          join(work, "tty-root"),
          "image",
          "pull",
          `${registry.host}/test/busybox:1`,
        ];
        const proc = Bun.spawn(["script", "-qfec", command.join(" "), "/dev/null"], {
          stdout: "pipe",
          stderr: "pipe",
          stdin: "ignore",
          env: { ...process.env, DOCKER_CONFIG: join(work, "no-docker-config") },
        });
        const [screen, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
        expect(code, screen).toBe(0);
        const digest = image.layers[0]!.digest.slice(7, 19);
        expect(screen).toMatch(new RegExp(`${digest} done\\s+\\[={24}\\] 1\\.0 MiB/1\\.0 MiB`));
        expect(screen).toContain("\x1b[1A");
      },
    );

    it("builds from a directory and imports a layout, without a registry", async () => {
      const rootfs = join(work, "rootfs");
      makeBusyboxRootfs(rootfs);
      const built = await cli(
        "--json",
        "image",
        "build-from-dir",
        rootfs,
        "--reference",
        "local/bb:1",
        "--cmd",
        "/bin/sh",
      );
      expect(built.code, built.stderr).toBe(0);
      const record = JSON.parse(built.stdout);
      expect(record.reference).toBe("docker.io/local/bb:1");
      const inspected = JSON.parse((await cli("image", "inspect", "local/bb:1")).stdout);
      expect(inspected.config.config.Cmd).toEqual(["/bin/sh"]);

      const layout = join(work, "layout");
      writeOciLayout(layout, [{ fixture: image, refName: "v9" }]);
      const imported = await cli("image", "import", layout, "--reference", "imported/bb");
      expect(imported.code, imported.stderr).toBe(0);
      expect(imported.stdout).toContain(`docker.io/imported/bb:v9 ${image.manifest.digest}`);
    });

    it("cancels a pull on SIGINT, leaving no image behind", async () => {
      const slow = startFaultRegistry({
        images: { "t/bb:1": image },
        fault: (ctx) =>
          ctx.kind === "blob" && ctx.target === image.layers[0]!.digest
            ? Bun.sleep(10_000).then(() => undefined)
            : undefined,
      });
      const sigRoot = join(work, "sigint-root");
      try {
        const proc = Bun.spawn(
          ["bun", CLI_MAIN, "--store", sigRoot, "image", "pull", `${slow.host}/t/bb:1`],
          {
            stdout: "pipe",
            stderr: "pipe",
            env: { ...process.env, DOCKER_CONFIG: join(work, "no-docker-config") },
          },
        );
        const reader = proc.stderr.getReader();
        let stderr = "";
        while (!stderr.includes("downloading")) {
          const { done, value } = await reader.read();
          if (done) break;
          stderr += new TextDecoder().decode(value);
        }
        proc.kill("SIGINT");
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          stderr += new TextDecoder().decode(value);
        }
        expect(await proc.exited).toBe(1);
        expect(stderr).toContain("Cancelled");
        const store = await ImageStore.open(sigRoot);
        expect(store.list()).toEqual([]);
        expect(await store.blobs.list()).toEqual([]);
      } finally {
        await slow.stop();
      }
    });

    it("reports errors as JSON with stable codes and exit status", async () => {
      const bad = await cli("--json", "image", "pull", "Bad/Ref");
      expect(bad.code).toBe(1);
      expect(JSON.parse(bad.stderr).error).toMatchObject({
        code: "InvalidImageReference",
        details: { part: "path" },
      });
      const missing = await cli("--json", "image", "inspect", "nope:1");
      expect(JSON.parse(missing.stderr).error.code).toBe("ImageNotFound");
      const usage = await cli("image", "pull", "--bogus");
      expect(usage.code).toBe(2);
      expect(usage.stderr).toContain("InvalidInput");
      const badTimeout = await cli("image", "pull", "--timeout", "0", `${registry.host}/test/busybox:1`);
      expect(badTimeout.code).toBe(2);
    });
  },
);
