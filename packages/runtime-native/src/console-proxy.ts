import { closeSync, createReadStream, mkdtempSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MagikError } from "@magikrun/spec/errors";
import { consoleSocket, errnoName } from "./syscall.ts";

/**
 * What `runc run` does for a terminal without --console-socket: receive the container's pty master on a private
 * socket and copy it to and from this process's stdio (raw mode while the caller's stdin is a terminal).
 */
export class ConsoleProxy {
  readonly socketPath: string;
  readonly #dir: string;
  readonly #listener: number;
  #master = -1;

  constructor() {
    this.#dir = mkdtempSync(join(tmpdir(), "magikrun-console-"));
    this.socketPath = join(this.#dir, "console.sock");
    this.#listener = consoleSocket.listen(this.socketPath);
    if (this.#listener < 0) {
      rmSync(this.#dir, { recursive: true, force: true });
      throw new MagikError("Internal", `cannot listen on a console socket: ${errnoName(this.#listener)}`, {
        details: { path: this.socketPath },
      });
    }
  }

  /** Takes the master the container sent while it was created (it is already queued on the socket). */
  receive(timeoutMs = 5_000): number {
    const fd = consoleSocket.receive(this.#listener, timeoutMs);
    if (fd < 0) {
      throw new MagikError("CreateFailed", `no console received: ${errnoName(fd)}`, {
        details: { path: this.socketPath, errno: errnoName(fd) },
      });
    }
    this.#master = fd;
    return fd;
  }

  /** Copies the console to stdout and stdin to the console; settles when the container side has closed. */
  attach(
    stdin: NodeJS.ReadStream = process.stdin,
    stdout: NodeJS.WritableStream = process.stdout,
  ): Promise<void> {
    const master = this.#master;
    const raw = stdin.isTTY === true;
    if (raw) stdin.setRawMode(true);
    const onInput = (chunk: Buffer) => {
      try {
        writeSync(master, chunk);
      } catch {
        // the container has gone: its output still drains below
      }
    };
    stdin.on("data", onInput);
    return new Promise<void>((resolve) => {
      const output = createReadStream("", { fd: master, autoClose: false });
      const done = () => {
        stdin.off("data", onInput);
        stdin.pause();
        if (raw) stdin.setRawMode(false);
        resolve();
      };
      output.on("data", (chunk) => stdout.write(chunk));
      // A pty master reads EIO once the last slave fd is closed: that is its end of stream.
      output.on("error", done);
      output.on("end", done);
    });
  }

  close(): void {
    if (this.#master >= 0) closeSync(this.#master);
    closeSync(this.#listener);
    rmSync(this.#dir, { recursive: true, force: true });
  }
}
