import {
  closeSync,
  constants,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { loadBeneathFs } from "./beneath-fs.ts";
import { Errno } from "./constants.ts";
import { WasiError } from "./errors.ts";
import { pathFs } from "./host-fs.ts";
import { MAX_SYMLINK_EXPANSIONS, resolvePath } from "./sandbox.ts";
import { buildC, runWasi, tempDir } from "./test-support.ts";
import { Wasi } from "./wasi.ts";

let escapeProgram: Uint8Array;
let root: string;
let rootFd: number;

function location(rel: string[]) {
  return { root: join(root, "sandbox"), rootFd, rel };
}

beforeAll(() => {
  escapeProgram = buildC("escape");
});

beforeEach(() => {
  root = tempDir("sandbox");
  mkdirSync(join(root, "outside"));
  writeFileSync(join(root, "outside", "secret"), "secret");
  symlinkSync("secret", join(root, "outside", "link"));
  const sb = join(root, "sandbox");
  mkdirSync(join(sb, "sub"), { recursive: true });
  writeFileSync(join(sb, "file"), "file");
  symlinkSync("../outside/secret", join(sb, "link-out"));
  symlinkSync("/etc/passwd", join(sb, "abs-link"));
  symlinkSync("../..", join(sb, "sub", "up"));
  symlinkSync("file", join(sb, "link-in"));
  symlinkSync("loop", join(sb, "loop"));
  symlinkSync("../outside", join(sb, "link-dir"));
  mkdirSync(join(root, "ro"));
  writeFileSync(join(root, "ro", "readme"), "read me");
  rootFd = openSync(sb, "r");
});

afterEach(() => {
  closeSync(rootFd);
  rmSync(root, { recursive: true, force: true });
});

function errnoOfResolve(path: string, follow = true): number {
  try {
    resolvePath(pathFs, location([]), path, follow);
    return 0;
  } catch (err) {
    if (err instanceof WasiError) return err.errno;
    throw err;
  }
}

describe("sandbox escapes through preopens", () => {
  it.each(["openat2", "paths"] as const)(
    "refuses .., absolute paths and outside symlinks (%s)",
    (confinement) => {
      const result = runWasi(escapeProgram, {
        confinement,
        preopens: [
          { guestPath: "/sandbox", hostPath: join(root, "sandbox") },
          { guestPath: "/ro", hostPath: join(root, "ro"), readonly: true },
        ],
      });
      expect(result.code).toBe(0);
      expect(result.stdout.trim().split("\n")).toEqual([
        "dotdot=63",
        "deep dotdot=63",
        "absolute=63",
        "inside dotdot=0",
        "link to outside=63",
        "link to outside nofollow=32",
        "absolute link=63",
        "dir link then dotdot=63",
        "inside link=0",
        "self loop=32",
        "trailing nul=28",
        "stat outside=63",
        "mkdir outside=63",
        "symlink absolute=63",
        "symlink dotdot ok=0",
        "open made-dotdot=63",
        "link outside=63",
        "rename outside=63",
        "unlink through link=63",
        "readlink outside=63",
        "readlink escaping link ok=0",
        "open sub=0",
        "sub dotdot=63",
        "sub link up=63",
        "rename sub=0",
        // The path fallback addresses a directory fd by the path it had when opened.
        `create via sub fd=${confinement === "openat2" ? 0 : Errno.NOENT}`,
        "close sub=0",
        // wasi-libc itself refuses a path under no preopen; ".." inside a preopened path reaches the runtime.
        "libc /etc/passwd fd=-1 errno=76",
        "libc dotdot fd=-1 errno=63",
        "ro read=7 read me",
        "ro create fd=-1 errno=76",
        "ro write=-1 errno=8",
        "ro truncate=-1 errno=76",
        "ro mkdir=-1 errno=76",
        "ro unlink=-1 errno=76",
        "ro rename=-1 errno=76",
        "ro raw create=76",
        "ro rights have write=0",
      ]);
      // Nothing outside the preopens was created, moved or removed.
      expect(readFileSync(join(root, "outside", "secret"), "utf8")).toBe("secret");
      for (const name of ["made-outside", "linked-outside", "renamed-outside"]) {
        expect(existsSync(join(root, name))).toBe(false);
      }
      expect(existsSync(join(root, "ro", "new"))).toBe(false);
      expect(existsSync(join(root, "sandbox", "sub2", "made-in-sub"))).toBe(confinement === "openat2");
      expect(readFileSync(join(root, "ro", "readme"), "utf8")).toBe("read me");
    },
  );
});

describe("kernel confinement (openat2)", () => {
  it("refuses what the path fallback would follow if a walked path were swapped for a symlink", () => {
    const beneath = loadBeneathFs(rootFd);
    expect(beneath).not.toBeNull();
    // As if "link-dir" had been a real directory during the walk and was replaced by a symlink afterwards.
    const raced = ["link-dir", "secret"];
    const fd = pathFs.open(location([]), raced, constants.O_RDONLY, 0);
    closeSync(fd);
    expect(() => beneath!.open(location([]), raced, constants.O_RDONLY, 0)).toThrow(
      expect.objectContaining({ errno: Errno.LOOP }),
    );
    expect(() => beneath!.lstat(location([]), ["..", "outside"])).toThrow(
      expect.objectContaining({ errno: Errno.PERM }),
    );
    expect(() => beneath!.unlink(location([]), ["link-dir", "secret"])).toThrow(
      expect.objectContaining({ errno: Errno.LOOP }),
    );
    expect(readFileSync(join(root, "outside", "secret"), "utf8")).toBe("secret");
    expect(beneath!.lstat(location([]), ["link-dir"]).isSymbolicLink()).toBe(true);
  });

  it("is what a Wasi uses by default on this host", () => {
    const wasi = new Wasi({
      args: [],
      env: [],
      preopens: [{ guestPath: "/s", hostPath: join(root, "sandbox") }],
    });
    try {
      expect(wasi.kernelConfined).toBe(true);
    } finally {
      wasi.close();
    }
  });
});

describe("resolvePath", () => {
  it("walks .. inside the preopen and stops at its root", () => {
    expect(errnoOfResolve("sub/../file")).toBe(0);
    expect(errnoOfResolve("sub/./../sub/../file")).toBe(0);
    expect(errnoOfResolve("..")).toBe(Errno.PERM);
    expect(errnoOfResolve("sub/../..")).toBe(Errno.PERM);
    expect(errnoOfResolve("/file")).toBe(Errno.PERM);
    expect(errnoOfResolve("")).toBe(Errno.NOENT);
    expect(errnoOfResolve("file/x")).toBe(Errno.NOTDIR);
  });

  it("names the final component unless the path ends in . or ..", () => {
    const dir = location([]);
    expect(resolvePath(pathFs, dir, "sub/new", true)).toMatchObject({ name: "new", rel: ["sub", "new"] });
    expect(resolvePath(pathFs, dir, "sub/.", true)).toMatchObject({ name: null, rel: ["sub"] });
    expect(resolvePath(pathFs, dir, "sub/..", true)).toMatchObject({ name: null, rel: [] });
    expect(resolvePath(pathFs, dir, "sub/", false)).toMatchObject({ name: "sub", mustBeDir: true });
    expect(resolvePath(pathFs, dir, "link-in", false)).toMatchObject({ name: "link-in" });
    expect(resolvePath(pathFs, dir, "link-in", true)).toMatchObject({ name: "file", rel: ["file"] });
  });

  it("gives ELOOP after 40 expansions and accepts a chain of exactly 40", () => {
    const sb = join(root, "sandbox");
    for (let i = 0; i < MAX_SYMLINK_EXPANSIONS; i++) symlinkSync(`c${i + 1}`, join(sb, `c${i}`));
    symlinkSync("file", join(sb, `c${MAX_SYMLINK_EXPANSIONS}`));
    expect(errnoOfResolve("c1")).toBe(0);
    expect(errnoOfResolve("c0")).toBe(Errno.LOOP);
  });

  it("resolves from a directory fd below the root without reaching above the root", () => {
    const dir = location(["sub"]);
    expect(resolvePath(pathFs, dir, "../file", true).rel).toEqual(["file"]);
    expect(() => resolvePath(pathFs, dir, "../../file", true)).toThrow(WasiError);
    expect(() => resolvePath(pathFs, dir, "up/file", true)).toThrow(WasiError);
  });
});
