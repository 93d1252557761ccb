/** Test-only TCP and pipe plumbing through libc, so a guest's blocking sock_* calls can be driven from one thread. */
import { createRequire } from "node:module";

const ffi = createRequire(import.meta.url)("bun:ffi") as typeof import("bun:ffi");
const { i32, u64, i64, ptr: pointer } = ffi.FFIType;
const p = ffi.ptr;
const lib = ffi.dlopen("libc.so.6", {
  socket: { args: [i32, i32, i32], returns: i32 },
  bind: { args: [i32, pointer, i32], returns: i32 },
  listen: { args: [i32, i32], returns: i32 },
  connect: { args: [i32, pointer, i32], returns: i32 },
  getsockname: { args: [i32, pointer, pointer], returns: i32 },
  send: { args: [i32, pointer, u64, i32], returns: i64 },
  recv: { args: [i32, pointer, u64, i32], returns: i64 },
  close: { args: [i32], returns: i32 },
  pipe: { args: [pointer], returns: i32 },
  write: { args: [i32, pointer, u64], returns: i64 },
});
const s = lib.symbols;
const AF_INET = 2;
const SOCK_STREAM = 1;

function loopback(port: number): Uint8Array {
  const addr = new Uint8Array(16);
  const view = new DataView(addr.buffer);
  view.setUint16(0, AF_INET, true);
  view.setUint16(2, port, false);
  addr.set([127, 0, 0, 1], 4);
  return addr;
}

function ok(rc: number | bigint, what: string): number {
  if (Number(rc) < 0) throw new Error(`${what} failed`);
  return Number(rc);
}

/** A listening socket on 127.0.0.1 with a kernel-chosen port. */
export function listenLoopback(): { fd: number; port: number } {
  const fd = ok(s.socket(AF_INET, SOCK_STREAM, 0), "socket");
  ok(s.bind(fd, p(loopback(0)), 16), "bind");
  ok(s.listen(fd, 4), "listen");
  const addr = new Uint8Array(16);
  const len = new Int32Array([16]);
  ok(s.getsockname(fd, p(addr), p(len)), "getsockname");
  return { fd, port: new DataView(addr.buffer).getUint16(2, false) };
}

/** Connects and sends `data`; completes without anyone calling accept, thanks to the listen backlog. */
export function connectAndSend(port: number, data: string): number {
  const fd = ok(s.socket(AF_INET, SOCK_STREAM, 0), "socket");
  ok(s.connect(fd, p(loopback(port)), 16), "connect");
  const bytes = new TextEncoder().encode(data);
  ok(s.send(fd, p(bytes), bytes.length, 0), "send");
  return fd;
}

/** Reads until the peer shuts down its write side. */
export function receiveAll(fd: number): string {
  const chunks: string[] = [];
  const buf = new Uint8Array(256);
  for (;;) {
    const n = ok(s.recv(fd, p(buf), buf.length, 0), "recv");
    if (n === 0) break;
    chunks.push(new TextDecoder().decode(buf.subarray(0, n)));
  }
  return chunks.join("");
}

export function closeFd(fd: number): void {
  s.close(fd);
}

/** A pipe as [readFd, writeFd]. */
export function makePipe(): [number, number] {
  const fds = new Int32Array(2);
  ok(s.pipe(p(fds)), "pipe");
  return [fds[0]!, fds[1]!];
}

export function writeFd(fd: number, data: string): void {
  const bytes = new TextEncoder().encode(data);
  ok(s.write(fd, p(bytes), bytes.length), "write");
}
