import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { Errno } from "./constants.ts";
import { WasiError } from "./errors.ts";
import { MAX_SYMLINK_EXPANSIONS, resolvePath } from "./sandbox.ts";
import { buildC, runWasi, tempDir } from "./test-support.ts";

let escapeProgram: Uint8Array;
let root: string;

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
});

afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

function errnoOfResolve(path: string, follow = true): number {
  try {
    resolvePath({ root: join(root, "sandbox"), rel: [] }, path, follow);
    return 0;
  } catch (err) {
    if (err instanceof WasiError) return err.errno;
    throw err;
  }
}

describe("sandbox escapes through preopens", () => {
  it("refuses .., absolute paths and symlinks leading outside, with wasmtime's errnos", () => {
    const result = runWasi(escapeProgram, {
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
    expect(readFileSync(join(root, "ro", "readme"), "utf8")).toBe("read me");
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
    const dir = { root: join(root, "sandbox"), rel: [] };
    expect(resolvePath(dir, "sub/new", true)).toMatchObject({ name: "new", rel: ["sub", "new"] });
    expect(resolvePath(dir, "sub/.", true)).toMatchObject({ name: null, rel: ["sub"] });
    expect(resolvePath(dir, "sub/..", true)).toMatchObject({ name: null, rel: [] });
    expect(resolvePath(dir, "sub/", false)).toMatchObject({ name: "sub", mustBeDir: true });
    expect(resolvePath(dir, "link-in", false)).toMatchObject({ name: "link-in" });
    expect(resolvePath(dir, "link-in", true)).toMatchObject({ name: "file", rel: ["file"] });
  });

  it("gives ELOOP after 40 expansions and accepts a chain of exactly 40", () => {
    const sb = join(root, "sandbox");
    for (let i = 0; i < MAX_SYMLINK_EXPANSIONS; i++) symlinkSync(`c${i + 1}`, join(sb, `c${i}`));
    symlinkSync("file", join(sb, `c${MAX_SYMLINK_EXPANSIONS}`));
    expect(errnoOfResolve("c1")).toBe(0);
    expect(errnoOfResolve("c0")).toBe(Errno.LOOP);
  });

  it("resolves from a directory fd below the root without reaching above the root", () => {
    const dir = { root: join(root, "sandbox"), rel: ["sub"] };
    expect(resolvePath(dir, "../file", true).rel).toEqual(["file"]);
    expect(() => resolvePath(dir, "../../file", true)).toThrow(WasiError);
    expect(() => resolvePath(dir, "up/file", true)).toThrow(WasiError);
  });
});
