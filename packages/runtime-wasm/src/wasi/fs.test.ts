import { lstatSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { buildC, runWasi, tempDir } from "./test-support.ts";

let files: Uint8Array;
let rights: Uint8Array;
const dirs: string[] = [];

beforeAll(() => {
  files = buildC("files");
  rights = buildC("rights");
});

afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function sandbox(): string {
  const dir = tempDir("fs");
  dirs.push(dir);
  return dir;
}

let confinement: "openat2" | "paths" = "openat2";

function run(wasm: Uint8Array, dir: string, ...args: string[]) {
  return runWasi(wasm, {
    args: ["prog", ...args],
    preopens: [{ guestPath: "/sandbox", hostPath: dir }],
    confinement,
  });
}

describe.each(["openat2", "paths"] as const)("fd_* and path_* through wasi-libc (%s)", (mode) => {
  beforeAll(() => {
    confinement = mode;
  });

  it("creates, writes, reads, seeks, tells, truncates, allocates, syncs and appends", () => {
    const dir = sandbox();
    const result = run(files, dir, "rw");
    expect(result.stdout).toBe(
      [
        "tell=11",
        "read=world",
        "pread=hello tell=11",
        "end=9",
        "size=4 regular=1",
        "allocated=100",
        "negative seek errno=1",
        "after append=101",
        "write on O_RDONLY errno=8",
        "excl errno=1",
        "missing errno=1",
        "trailing slash errno=1",
        "O_DIRECTORY on file errno=1",
        "ok",
        "",
      ].join("\n"),
    );
    expect(result.code).toBe(0);
    const content = readFileSync(join(dir, "data.txt"));
    expect(content.length).toBe(101);
    expect(content.subarray(0, 4).toString()).toBe("HELL");
    expect(content[100]).toBe("!".charCodeAt(0));
  });

  it("sets times, makes and removes directories, renames, symlinks, readlinks and hard-links", () => {
    const dir = sandbox();
    const result = run(files, dir, "meta");
    expect(result.stdout).toBe(
      [
        "futimens atime=1000000000.123456000 mtime=1200000000.987654000",
        "utimensat atime=1000000000 mtime=1300000000",
        "mkdir again errno=1",
        "isdir=1",
        "rmdir non-empty errno=1",
        "unlink dir errno=1",
        "renamed over=1",
        "readlink=f",
        "lstat islink=1",
        "stat through link isreg=1",
        "readlink on file errno=1",
        "symlink exists errno=1",
        "nlink=2",
        "nlink after unlink=1",
        "unlink missing errno=1",
        "ok",
        "",
      ].join("\n"),
    );
    expect(readdirSync(dir)).toEqual([]);
  });

  it("lists a directory of 300 entries across many fd_readdir calls, with working cookies", () => {
    const dir = sandbox();
    const result = run(files, dir, "readdir", "300");
    // 300 files + subdir + "." + ".."; seekdir to the cookie after entry 150 leaves 153.
    expect(result.stdout).toBe("files=300 dirs=1 dots=2\nafter seekdir=153\nok\n");
    expect(lstatSync(join(dir, "subdir")).isDirectory()).toBe(true);
  });
});

describe("fd table and rights (raw calls)", () => {
  beforeAll(() => {
    confinement = "openat2";
  });

  it("reports prestats, enforces rights, only narrows them, renumbers and closes", () => {
    const dir = sandbox();
    const result = run(rights, dir);
    expect(result.code).toBe(0);
    expect(result.stdout.trim().split("\n")).toEqual([
      "prestat 3=0",
      "prestat len=8",
      "prestat name rc=0",
      "prestat name=/sandbox",
      "prestat stdout=8",
      "prestat unknown=8",
      "fdstat 3 rc=0",
      "fdstat 3 type=3",
      "fdstat 3 can open=1",
      "fdstat 3 can read bytes=0",
      "new fds=405",
      "fdstat a type=4",
      "fdstat a rights exact=1",
      "set flags append=0",
      "append content=AAA+",
      "fdstat a flags=1",
      "advise ok=0",
      "advise bad=28",
      "allocate=0",
      "size after allocate=16",
      "set size=0",
      "size after set=2",
      "filetype=4",
      "tell=4",
      "seek bad whence=28",
      "readdir on file=76",
      "read on dir=76",
      "seek on stdout=76",
      "dir flag on file=54",
      "drop write=0",
      "write without right=76",
      "regain write=76",
      "narrow fd write=76",
      "narrow fd seek=76",
      "renumber to closed=8",
      "renumber=0",
      "renumbered content=bbbbbb",
      "old fd=8",
      "close=0",
      "double close=8",
      "close preopen=0",
      "open after close=8",
    ]);
  });

  it("fails with ENFILE once maxFds fds are open", () => {
    const dir = sandbox();
    // stdio + preopen take 4 of the 5 slots: the first path_open (a) succeeds, the second (b) is refused.
    const result = runWasi(rights, {
      args: ["prog"],
      preopens: [{ guestPath: "/sandbox", hostPath: dir }],
      maxFds: 5,
    });
    expect(result.stdout).toContain("b=-41\n");
  });
});
