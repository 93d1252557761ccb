/**
 * A minimal stand-in with the interface of ../wasi (args, environ, fd_write to host fds, proc_exit), so engine
 * tests do not depend on the full WASI implementation. Everything else answers ENOSYS.
 */
import { writeSync } from "node:fs";

const ENOSYS = 52;
const EBADF = 8;

class WasiExit extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

export interface WasiStubOptions {
  args: string[];
  env: string[];
  stdout?: number;
  stderr?: number;
}

export class Wasi {
  readonly imports: { wasi_snapshot_preview1: Record<string, (...args: never[]) => number | undefined> };
  #memory: WebAssembly.Memory | undefined;

  constructor(options: WasiStubOptions) {
    const fds = new Map([
      [1, options.stdout ?? 1],
      [2, options.stderr ?? 2],
    ]);
    const encoder = new TextEncoder();
    const strings = (list: string[]) => list.map((s) => encoder.encode(`${s}\0`));
    const sizes = (list: Uint8Array[]) => (countPtr: number, sizePtr: number) => {
      this.#view().setUint32(countPtr, list.length, true);
      this.#view().setUint32(
        sizePtr,
        list.reduce((n, s) => n + s.length, 0),
        true,
      );
      return 0;
    };
    const fill = (list: Uint8Array[]) => (ptrs: number, buf: number) => {
      for (const [i, s] of list.entries()) {
        this.#view().setUint32(ptrs + 4 * i, buf, true);
        new Uint8Array(this.#memory!.buffer, buf, s.length).set(s);
        buf += s.length;
      }
      return 0;
    };
    const args = strings(options.args);
    const env = strings(options.env);
    const calls: Record<string, (...args: never[]) => number | undefined> = {
      args_sizes_get: sizes(args),
      args_get: fill(args),
      environ_sizes_get: sizes(env),
      environ_get: fill(env),
      fd_write: (fd: number, iovs: number, count: number, written: number) => {
        const target = fds.get(fd);
        if (target === undefined) return EBADF;
        let total = 0;
        for (let i = 0; i < count; i++) {
          const ptr = this.#view().getUint32(iovs + 8 * i, true);
          const len = this.#view().getUint32(iovs + 8 * i + 4, true);
          total += writeSync(target, new Uint8Array(this.#memory!.buffer, ptr, len));
        }
        this.#view().setUint32(written, total, true);
        return 0;
      },
      proc_exit: (code: number) => {
        throw new WasiExit(code);
      },
    };
    const namespace = new Proxy(calls, {
      get: (target, name: string) => target[name] ?? (() => ENOSYS),
    });
    this.imports = { wasi_snapshot_preview1: namespace };
  }

  #view(): DataView {
    return new DataView(this.#memory!.buffer);
  }

  start(instance: WebAssembly.Instance): number {
    this.#memory = instance.exports.memory as WebAssembly.Memory;
    try {
      (instance.exports._start as () => void)();
      return 0;
    } catch (err) {
      if (err instanceof WasiExit) return err.code;
      throw err;
    }
  }
}
