import { spawnSync } from "node:child_process";
import { existsSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { buildC, runWasi, tempDir } from "./test-support.ts";

const runner = new URL("./testdata/node-wasi-runner.cjs", import.meta.url).pathname;

/**
 * Parity needs Node's own node:wasi (uvwasi). `bunx --bun` puts a `node` that is Bun first on PATH, so the
 * real one is looked up entry by entry and recognised by not being Bun.
 */
function findRealNode(): string | undefined {
  for (const entry of (process.env.PATH ?? "").split(":")) {
    const candidate = join(entry, "node");
    if (!existsSync(candidate)) continue;
    const probe = spawnSync(candidate, ["-p", "process.versions.bun ? 'bun' : process.version"], {
      encoding: "utf8",
    });
    if (probe.status === 0 && /^v(1[89]|[2-9]\d)\./.test(probe.stdout)) return candidate;
  }
  return undefined;
}

const nodeBinary = findRealNode();
const dirs: string[] = [];

afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function dir(label: string): string {
  const d = tempDir(label);
  dirs.push(d);
  return d;
}

/** stdout plus exit code, from Node's node:wasi and from ours, each in its own fresh sandbox. */
function both(program: string, args: string[]): { node: string[]; ours: string[] } {
  const wasm = buildC(program);
  const moduleDir = dir("parity-module");
  writeFileSync(join(moduleDir, "m.wasm"), wasm);
  const node = spawnSync(nodeBinary!, [runner, join(moduleDir, "m.wasm"), dir("parity-node"), ...args], {
    encoding: "utf8",
    env: { WASI_ENV_GREETING: "hi" },
  });
  if (node.status !== 0) throw new Error(`node:wasi runner failed: ${node.stderr}`);
  const ours = runWasi(wasm, {
    args,
    env: ["GREETING=hi"],
    preopens: [{ guestPath: "/sandbox", hostPath: dir("parity-ours") }],
  });
  return {
    node: node.stdout.trim().split("\n"),
    ours: `${ours.stdout}exit=${ours.code}`.trim().split("\n"),
  };
}

describe.skipIf(nodeBinary === undefined)("behaviour parity with Node's node:wasi", () => {
  it("args, env, stdout and exit code", () => {
    const { node, ours } = both("hello", ["hello", "return", "4", "x y"]);
    expect(ours).toEqual(node);
    expect(ours.at(-1)).toBe("exit=4");
  });

  it("file reads, writes, seeks, truncation, allocation and append", () => {
    const { node, ours } = both("files", ["files", "rw"]);
    expect(ours).toEqual(node);
  });

  it("directories, renames, symlinks, hard links (times differ: Node drops sub-second digits)", () => {
    const { node, ours } = both("files", ["files", "meta"]);
    expect(ours.slice(1)).toEqual(node.slice(1));
    expect(node[0]).toBe("futimens atime=1000000000.000000000 mtime=1200000000.000000000");
    expect(ours[0]).toBe("futimens atime=1000000000.123456000 mtime=1200000000.987654000");
  });

  it("readdir sees the same files (uvwasi omits . and .., wasmtime and we list them)", () => {
    const { node, ours } = both("files", ["files", "readdir", "300"]);
    expect(node[0]).toBe("files=300 dirs=1 dots=0");
    expect(ours[0]).toBe("files=300 dirs=1 dots=2");
  });

  it("fd table and rights, except two uvwasi quirks", () => {
    const { node, ours } = both("rights", ["rights"]);
    // uvwasi answers fd_prestat_get on stdio with EINVAL and reports host open flags as fdflags;
    // we answer EBADF (what wasi-libc's preopen scan expects) and the preview 1 fdflags.
    const quirks = new Set(["prestat stdout", "fdstat a flags"]);
    const strip = (list: string[]) => list.filter((l) => !quirks.has(l.split("=")[0] ?? ""));
    expect(strip(ours)).toEqual(strip(node));
    expect(ours).toContain("prestat stdout=8");
    expect(ours).toContain("fdstat a flags=1");
  });
});
