import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import zlib from "node:zlib";
import { afterEach, describe, expect, it } from "vitest";
import { compressStream, gzipBytes, type TarEntry, tarBytes, tarStream, zstdBytes } from "./tar-writer.ts";

const temps: string[] = [];
afterEach(() => {
  for (const dir of temps.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

function gnuList(archive: Uint8Array): string[] {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "magik-tarw-"));
  temps.push(dir);
  fs.writeFileSync(path.join(dir, "a.tar"), archive);
  const out = spawnSync("tar", ["--numeric-owner", "-tvf", path.join(dir, "a.tar")], { encoding: "utf8" });
  expect(out.stderr).toBe("");
  return out.stdout.trim().split("\n");
}

const longName = `${"d".repeat(120)}/${"f".repeat(120)}`;
const entries: TarEntry[] = [
  { type: "dir", path: "etc", mode: 0o755 },
  { type: "file", path: "etc/passwd", data: "root:x:0:0::/root:/bin/sh\n", mode: 0o644 },
  { type: "file", path: "bin/su", data: "x", mode: 0o4755, uid: 0, gid: 0 },
  { type: "symlink", path: "bin/sh", target: "/bin/busybox" },
  { type: "hardlink", path: "etc/passwd-", target: "etc/passwd" },
  { type: "char", path: "dev/null", major: 1, minor: 3, mode: 0o666 },
  { type: "block", path: "dev/loop0", major: 7, minor: 0, mode: 0o660 },
  { type: "fifo", path: "run/fifo" },
  { type: "file", path: longName, data: "long", uid: 123_456_789, gid: 1000 },
  { type: "file", path: "ping", data: "", xattrs: { "security.capability": new Uint8Array([1, 0, 0, 2]) } },
];

describe("tarBytes", () => {
  it("is deterministic and readable by GNU tar, with every entry kind, long names and big ids", () => {
    const archive = tarBytes(entries);
    expect(tarBytes(entries)).toEqual(archive);
    const lines = gnuList(archive);
    expect(lines).toHaveLength(entries.length);
    expect(lines[0]).toMatch(/^drwxr-xr-x 0\/0 +0 1970-01-01 00:00 etc\/$/);
    expect(lines[2]).toMatch(/^-rwsr-xr-x 0\/0 +1 .* bin\/su$/);
    expect(lines[3]).toMatch(/^lrwxrwxrwx .* bin\/sh -> \/bin\/busybox$/);
    expect(lines[4]).toMatch(/^hrw-r--r-- .* etc\/passwd- link to etc\/passwd$/);
    expect(lines[5]).toMatch(/^crw-rw-rw- 0\/0 +1,3 .* dev\/null$/);
    expect(lines[6]).toMatch(/^brw-rw---- 0\/0 +7,0 .* dev\/loop0$/);
    expect(lines[7]).toMatch(/^prw-r--r-- .* run\/fifo$/);
    expect(lines[8]).toContain(`123456789/1000`);
    expect(lines[8]!.endsWith(longName)).toBe(true);
  });

  it("writes xattrs as SCHILY.xattr PAX records, which GNU tar extracts", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "magik-tarw-"));
    temps.push(dir);
    const archive = tarBytes([{ type: "file", path: "f", xattrs: { "user.k": "v1" } }]);
    expect(new TextDecoder().decode(archive)).toContain("26 SCHILY.xattr.user.k=v1\n");
    fs.writeFileSync(path.join(dir, "a.tar"), archive);
    fs.mkdirSync(path.join(dir, "out"));
    const x = spawnSync("tar", ["--xattrs", "--xattrs-include=*", "-xf", "../a.tar"], {
      cwd: path.join(dir, "out"),
      encoding: "utf8",
    });
    expect(x.status).toBe(0);
    const got = spawnSync("getfattr", ["--only-values", "-n", "user.k", path.join(dir, "out/f")], {
      encoding: "utf8",
    });
    if (got.error) return; // getfattr (Debian package attr) absent: the PAX record was checked above
    expect(got.stdout).toBe("v1");
  });

  it("writes raw hostile names unchanged, including NUL in a PAX path and GNU long names", () => {
    const archive = tarBytes([
      { type: "file", path: "../evil", data: "x" },
      { type: "file", path: "/abs", data: "x" },
      { type: "file", path: "ok", pax: { path: "a\0b" } },
    ]);
    const text = new TextDecoder().decode(archive);
    expect(text).toContain("../evil");
    expect(text).toContain("/abs");
    expect(text).toContain("12 path=a\0b\n");
    const gnu = tarBytes([{ type: "file", path: longName, data: "x" }], { longNames: "gnu" });
    expect(new TextDecoder().decode(gnu)).toContain("././@LongLink");
    expect(gnuList(gnu)[0]!.endsWith(longName)).toBe(true);
  });
});

describe("tarStream and compression", () => {
  it("streams the same bytes as tarBytes, with streamed file data checked against its size", async () => {
    const big = new Uint8Array(70_000).fill(7);
    const streamed: TarEntry[] = [
      ...entries,
      {
        type: "file",
        path: "big",
        data: { size: big.length, chunks: [big.subarray(0, 1000), big.subarray(1000)] },
      },
    ];
    const fromStream = new Uint8Array(await new Response(tarStream(streamed)).arrayBuffer());
    expect(fromStream).toEqual(tarBytes([...entries, { type: "file", path: "big", data: big }]));
    const short: TarEntry[] = [{ type: "file", path: "f", data: { size: 10, chunks: [new Uint8Array(3)] } }];
    await expect(new Response(tarStream(short)).arrayBuffer()).rejects.toThrow(/declared 10 bytes, got 3/);
  });

  it("gzip and zstd are reproducible and round-trip, also streamed", async () => {
    const archive = tarBytes(entries);
    const gz = gzipBytes(archive);
    expect(gzipBytes(archive)).toEqual(gz);
    expect([...gz.subarray(4, 8)]).toEqual([0, 0, 0, 0]);
    expect(new Uint8Array(zlib.gunzipSync(gz))).toEqual(archive);
    expect(new Uint8Array(zlib.zstdDecompressSync(zstdBytes(archive)))).toEqual(archive);
    const streamedGz = await new Response(compressStream(tarStream(entries), "gzip")).arrayBuffer();
    expect(new Uint8Array(zlib.gunzipSync(new Uint8Array(streamedGz)))).toEqual(archive);
    const streamedZst = await new Response(compressStream(tarStream(entries), "zstd")).arrayBuffer();
    expect(new Uint8Array(zlib.zstdDecompressSync(new Uint8Array(streamedZst)))).toEqual(archive);
  });
});
