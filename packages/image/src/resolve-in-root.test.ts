import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { hasOpenat2, O_CLOEXEC, O_PATH, setOpenat2Available } from "./fs-native.ts";
import { fdPath, openInRoot, readFileInRoot } from "./resolve-in-root.ts";

let dir: string;
let root: string;
let rootFd: number;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "magik-inroot-"));
  root = path.join(dir, "root");
  fs.mkdirSync(path.join(root, "etc"), { recursive: true });
  fs.writeFileSync(path.join(root, "etc/passwd"), "inside");
  fs.writeFileSync(path.join(dir, "passwd"), "outside");
  fs.symlinkSync(dir, path.join(root, "abs")); // absolute, pointing at the host dir holding "outside"
  fs.symlinkSync("../../../../../..", path.join(root, "up"));
  fs.symlinkSync("loop2", path.join(root, "loop1"));
  fs.symlinkSync("loop1", path.join(root, "loop2"));
  fs.mkdirSync(path.join(root, "abs-target", "etc"), { recursive: true });
  rootFd = fs.openSync(root, O_PATH | fs.constants.O_DIRECTORY | O_CLOEXEC);
});
afterAll(() => {
  fs.closeSync(rootFd);
  fs.rmSync(dir, { recursive: true, force: true });
});
afterEach(() => setOpenat2Available(undefined));

function read(rel: string): string {
  const fd = openInRoot(rootFd, rel, fs.constants.O_RDONLY, "in-root");
  try {
    return fs.readFileSync(fdPath(fd), "utf8");
  } finally {
    fs.closeSync(fd);
  }
}

function errorCode(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    return (err as { code?: string }).code;
  }
}

const modes = [
  { name: "openat2 (RESOLVE_IN_ROOT)", openat2: true },
  { name: "component-wise O_NOFOLLOW walk", openat2: false },
];

describe.each(modes)("openInRoot with $name", ({ openat2 }) => {
  it.skipIf(openat2 && !hasOpenat2())("keeps '..', absolute and relative symlinks inside the root", () => {
    setOpenat2Available(openat2);
    expect(read("etc/passwd")).toBe("inside");
    expect(read("../../../etc/passwd")).toBe("inside");
    expect(read("up/etc/passwd")).toBe("inside");
    expect(errorCode(() => read("abs/passwd"))).toBe("ENOENT"); // resolved as <root><dir>/passwd
    expect(errorCode(() => read("loop1/x"))).toBe("ELOOP");
  });

  it.skipIf(openat2 && !hasOpenat2())("refuses any symlink with the no-symlinks policy", () => {
    setOpenat2Available(openat2);
    const flags = O_PATH | fs.constants.O_DIRECTORY;
    expect(errorCode(() => openInRoot(rootFd, "up/etc", flags, "no-symlinks"))).toBe("ELOOP");
    const fd = openInRoot(rootFd, "etc", flags, "no-symlinks");
    expect(fs.readdirSync(fdPath(fd))).toEqual(["passwd"]);
    fs.closeSync(fd);
  });
});

describe("readFileInRoot", () => {
  it("reads through symlinks inside the root only, and is undefined when missing", () => {
    expect(new TextDecoder().decode(readFileInRoot(root, "up/etc/passwd", 100))).toBe("inside");
    expect(readFileInRoot(root, "abs/passwd", 100)).toBeUndefined();
    expect(() => readFileInRoot(root, "etc/passwd", 3)).toThrow(/larger than 3 bytes/);
  });
});
