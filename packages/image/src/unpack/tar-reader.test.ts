import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { tarBytes } from "../tar-writer.ts";
import { readTar, type TarHeader } from "./tar-reader.ts";

const temps: string[] = [];
afterEach(() => {
  for (const dir of temps.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

async function headers(archive: Uint8Array, chunkSize = 100): Promise<Array<TarHeader & { data: string }>> {
  async function* chunks() {
    for (let i = 0; i < archive.length; i += chunkSize) yield archive.subarray(i, i + chunkSize);
  }
  const out: Array<TarHeader & { data: string }> = [];
  for await (const { header, body } of readTar(chunks())) {
    let data = "";
    for await (const chunk of body) data += new TextDecoder().decode(chunk);
    out.push({ ...header, data });
  }
  return out;
}

describe("readTar", () => {
  it("reads what GNU tar writes (PAX format, long names, hardlinks, symlinks), in small chunks", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "magik-tarr-"));
    temps.push(dir);
    const long = `${"d".repeat(120)}/${"f".repeat(130)}`;
    fs.mkdirSync(path.join(dir, "src", "d".repeat(120)), { recursive: true });
    fs.writeFileSync(path.join(dir, "src", long), "long content");
    fs.writeFileSync(path.join(dir, "src/a"), "A");
    fs.chmodSync(path.join(dir, "src/a"), 0o4755);
    fs.linkSync(path.join(dir, "src/a"), path.join(dir, "src/b"));
    fs.symlinkSync("/abs/target", path.join(dir, "src/s"));
    const tar = spawnSync(
      "tar",
      [
        "--format=posix",
        "--sort=name",
        "--mtime=@77",
        "--owner=0",
        "--group=0",
        "--numeric-owner",
        "-C",
        path.join(dir, "src"),
        "-cf",
        "-",
        ".",
      ],
      { maxBuffer: 1 << 24 },
    );
    expect(tar.status).toBe(0);
    const got = await headers(new Uint8Array(tar.stdout), 97);
    const byPath = new Map(got.map((h) => [h.path, h]));
    expect(byPath.get(`./${long}`)).toMatchObject({ type: "file", data: "long content", mtime: 77 });
    expect(byPath.get("./a")).toMatchObject({ type: "file", mode: 0o4755, data: "A", uid: 0, gid: 0 });
    expect(byPath.get("./b")).toMatchObject({ type: "hardlink", linkpath: "./a", data: "" });
    expect(byPath.get("./s")).toMatchObject({ type: "symlink", linkpath: "/abs/target" });
    expect(byPath.get(".")).toMatchObject({ type: "dir" });
  });

  it("reads xattrs from SCHILY.xattr records and ignores global PAX headers", async () => {
    const archive = tarBytes([
      { type: "file", path: "f", data: "x", xattrs: { "security.capability": "caps" } },
    ]);
    const [entry] = await headers(archive);
    expect(new TextDecoder().decode(entry!.xattrs.get("security.capability"))).toBe("caps");
    // A global header naming a path must not rename later entries.
    const global = tarBytes([
      { type: "file", path: "pax_global_header", typeflag: "g", data: "13 path=evil\n" },
      { type: "file", path: "g2", data: "" },
    ]);
    expect((await headers(global)).map((h) => h.path)).toEqual(["g2"]);
  });

  it("refuses a header with a bad checksum, and an archive without an end marker", async () => {
    const archive = tarBytes([{ type: "file", path: "f", data: "x" }]);
    const corrupt = archive.slice();
    corrupt[0] = "g".charCodeAt(0);
    await expect(headers(corrupt)).rejects.toThrow(/checksum mismatch/);
    await expect(headers(archive.subarray(0, 1024))).rejects.toThrow(/without an end-of-archive marker/);
  });
});
