import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { closeFd, connectAndSend, listenLoopback, receiveAll } from "./socket-support.ts";
import { buildC, runWasi } from "./test-support.ts";

let sock: Uint8Array;
const open: number[] = [];

beforeAll(() => {
  sock = buildC("sock");
});

afterEach(() => {
  for (const fd of open.splice(0)) closeFd(fd);
});

describe("sockets on a preopened listener", () => {
  it("accepts, peeks, receives, sends and shuts down; non-sockets are ENOTSOCK", () => {
    const listener = listenLoopback();
    open.push(listener.fd);
    const client = connectAndSend(listener.port, "ping");
    open.push(client);
    // No preopened directories, so the listener is fd 3.
    const result = runWasi(sock, { args: ["sock", "3"], sockets: [listener.fd] });
    expect(result.code).toBe(0);
    expect(result.stdout.trim().split("\n")).toEqual([
      "listener type=6",
      "accept bad flags=28",
      "accept on stdout=57",
      "recv on stdout=57",
      "accept=0",
      "peek=0",
      "recv=0",
      "request=ping",
      "set nonblock=0",
      "recv nothing pending=6",
      "send=0",
      "sent=9",
      "shutdown bad=28",
      "shutdown=0",
      // The listener's rights allow accepting, not shutting down.
      "shutdown listener=76",
      "close=0",
    ]);
    expect(receiveAll(client)).toBe("pong:ping");
  });
});
