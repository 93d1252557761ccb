import { rmSync } from "node:fs";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { buildC, runWasi, tempDir } from "./test-support.ts";

let paths: Uint8Array;
const dirs: string[] = [];

beforeAll(() => {
  paths = buildC("paths");
});

afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/**
 * Errnos for path edge cases, as wasmtime's preview 1 test programs expect them on Linux (trailing slashes,
 * "." targets, renames between files and directories, dangling and looping symlinks, hard links, times).
 */
const EXPECTED = [
  "mkdir=0",
  "mkdir nested=0",
  "open dir with trailing slashes=0",
  "open file with trailing slash=54",
  "open dotted path=0",
  "open missing=44",
  "create excl existing=20",
  "create dot excl=20",
  "empty path=44",
  "rmdir on file=54",
  "rmdir non-empty=55",
  "rmdir dot=28",
  "unlink dir=31",
  "unlink file/=54",
  "mkdir existing=20",
  "rename dir onto file=54",
  "rename file onto dir=31",
  "rename file to file/=54",
  "rename missing=44",
  "rename dir with slashes=0",
  "rename back=0",
  "symlink=0",
  "symlink dangling=0",
  "symlink onto existing=20",
  "symlink trailing slash=44",
  "symlink loop a=0",
  "symlink loop b=0",
  "open loop=32",
  "open dangling follow=44",
  "create through dangling=0",
  "open symlink nofollow=32",
  "open symlink nofollow dir flag=54",
  "stat symlink nofollow=0",
  "type=7",
  "stat symlink follow=0",
  "type=4",
  "stat dir/=0",
  "stat file/=54",
  "readlink=0",
  "readlink got=file",
  "readlink small=0",
  "readlink small got=no",
  "readlink on file=28",
  "link=0",
  "link onto existing=20",
  "link dir=63",
  "link symlink nofollow=0",
  "stat link of symlink=7",
  "link symlink follow=0",
  "stat link of target=4",
  "set times both=28",
  "set times nofollow on symlink=0",
  "symlink atime=5",
  "target atime untouched=1",
  "mkdir list=0",
  "open list=0",
  // ".", "..", "a", "bb", "ccc": every entry but the last arrives with a truncated next one behind it.
  "readdir entries=5",
  "readdir name bytes=9",
  "readdir full buffers=4",
  "readdir past end=0",
  "readdir past end bytes=0",
];

describe.each(["openat2", "paths"] as const)("path edge cases (%s)", (confinement) => {
  it("returns the errnos a conforming runtime returns", () => {
    const dir = tempDir("paths");
    dirs.push(dir);
    const result = runWasi(paths, {
      args: ["paths"],
      confinement,
      preopens: [{ guestPath: "/sandbox", hostPath: dir }],
    });
    expect(result.code).toBe(0);
    expect(result.stdout.trim().split("\n")).toEqual(EXPECTED);
  });
});
