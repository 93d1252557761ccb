import { closeSync, constants, fstatSync, openSync, realpathSync } from "node:fs";
// The subpath keeps zod out of every Worker: loading it costs 80-400 ms per boot.
import { MagikError } from "@magikrun/spec/errors";
import { loadBeneathFs } from "./beneath-fs.ts";
import { clockNow, clockResolution, hostClock, type WasiClock } from "./clock.ts";
import {
  Errno,
  Filetype,
  RIGHTS_DIR,
  RIGHTS_FILE,
  RIGHTS_LISTENER,
  RIGHTS_MUTATING,
  Rights,
} from "./constants.ts";
import type { WasiContext, WasiFunctions } from "./context.ts";
import { errnoOf, WasiExit } from "./errors.ts";
import { fdCalls } from "./fd-calls.ts";
import { fdIoCalls } from "./fd-io.ts";
import { FdTable, filetypeOf, type StdioEntry } from "./fd-table.ts";
import { type HostFs, pathFs } from "./host-fs.ts";
import { encode, GuestView } from "./memory.ts";
import type { WasiOptions } from "./options.ts";
import { pathCalls } from "./path-calls.ts";
import { pollCalls } from "./poll.ts";
import { sockCalls } from "./sock-calls.ts";

const STDIO_RIGHTS =
  Rights.FD_FDSTAT_SET_FLAGS | Rights.FD_SYNC | Rights.FD_FILESTAT_GET | Rights.POLL_FD_READWRITE;
/**
 * Web Crypto's getRandomValues refuses more than 64 KiB at once; fill in chunks. It is used rather than
 * node:crypto, whose import alone made a Worker's boot about 10 ms (of CPU) longer.
 */
const RANDOM_CHUNK = 65_536;

function stdioEntry(target: number | "ignore" | ((chunk: Uint8Array) => void), write: boolean): StdioEntry {
  const rightsBase = STDIO_RIGHTS | (write ? Rights.FD_WRITE | Rights.FD_DATASYNC : Rights.FD_READ);
  const base = { kind: "stdio", rightsBase, rightsInheriting: 0n, fdflags: 0 } as const;
  if (typeof target === "number") {
    let filetype: number = Filetype.UNKNOWN;
    try {
      filetype = filetypeOf(fstatSync(target));
    } catch {
      // An fd that cannot be stat'ed still works for read/write; its type is simply unknown.
    }
    return { ...base, hostFd: target, filetype };
  }
  if (target === "ignore") return { ...base, filetype: Filetype.CHARACTER_DEVICE };
  return { ...base, sink: target, filetype: Filetype.CHARACTER_DEVICE };
}

/** Strings as preview 1 lays them out: pointers to NUL-terminated UTF-8, packed into one buffer. */
function packStrings(list: string[]): { encoded: Uint8Array[]; size: number } {
  const encoded = list.map((s) => encode(`${s}\0`));
  return { encoded, size: encoded.reduce((n, e) => n + e.length, 0) };
}

/**
 * WASI preview 1 for one instance. Runs inside the instance's Worker: every call is synchronous and operates on
 * host file descriptors the fd table owns (closed by `close()`).
 */
export class Wasi {
  readonly #fds: FdTable;
  readonly #clock: WasiClock;
  readonly #args: { encoded: Uint8Array[]; size: number };
  readonly #env: { encoded: Uint8Array[]; size: number };
  readonly #rootFds: number[] = [];
  readonly #confinement: NonNullable<WasiOptions["confinement"]>;
  #hostFs: HostFs | undefined;
  #memory: WebAssembly.Memory | undefined;
  #imports: Bun.WebAssembly.Imports | undefined;

  constructor(options: WasiOptions) {
    this.#confinement = options.confinement ?? "auto";
    this.#clock = options.clock ?? hostClock;
    this.#args = packStrings(options.args);
    this.#env = packStrings(options.env);
    this.#fds = new FdTable(options.maxFds ?? 1024);
    this.#fds.set(0, stdioEntry(options.stdin ?? "ignore", false));
    this.#fds.set(1, stdioEntry(options.stdout ?? 1, true));
    this.#fds.set(2, stdioEntry(options.stderr ?? 2, true));
    try {
      for (const preopen of options.preopens)
        this.#preopen(preopen.guestPath, preopen.hostPath, !!preopen.readonly);
    } catch (err) {
      this.close();
      throw err;
    }
    for (const hostFd of options.sockets ?? []) {
      this.#fds.add({
        kind: "socket",
        hostFd,
        owned: false,
        filetype: Filetype.SOCKET_STREAM,
        rightsBase: RIGHTS_LISTENER,
        rightsInheriting: 0n,
        fdflags: 0,
      });
    }
  }

  #preopen(guestPath: string, hostPath: string, readonly: boolean): void {
    let root: string;
    let hostFd: number;
    let rootFd: number;
    try {
      root = realpathSync(hostPath);
      hostFd = openSync(root, constants.O_RDONLY | constants.O_DIRECTORY);
      // The guest may close its preopen fd; directories opened through it still resolve from this one.
      rootFd = openSync(root, constants.O_RDONLY | constants.O_DIRECTORY);
      this.#rootFds.push(rootFd);
    } catch (err) {
      throw new MagikError("InvalidBundle", `preopen ${guestPath}: cannot open ${hostPath} as a directory`, {
        cause: err,
        details: { guestPath, hostPath },
      });
    }
    this.#hostFs ??= this.#chooseHostFs(rootFd);
    const mask = readonly ? ~RIGHTS_MUTATING : RIGHTS_DIR | RIGHTS_FILE;
    this.#fds.add({
      kind: "dir",
      hostFd,
      location: { root, rootFd, rel: [] },
      readonly,
      guestPath,
      filetype: Filetype.DIRECTORY,
      rightsBase: RIGHTS_DIR & mask,
      rightsInheriting: (RIGHTS_DIR | RIGHTS_FILE) & mask,
      fdflags: 0,
    });
  }

  #chooseHostFs(probeDirFd: number): HostFs {
    if (this.#confinement === "paths") return pathFs;
    const beneath = loadBeneathFs(probeDirFd);
    if (beneath !== null) return beneath;
    if (this.#confinement === "openat2") {
      throw new MagikError(
        "RuntimeUnavailable",
        "openat2(2) with RESOLVE_BENEATH is not available on this host",
      );
    }
    return pathFs;
  }

  /** True when path calls are confined by the kernel (openat2), not only by the runtime's path walk. */
  get kernelConfined(): boolean {
    return this.#hostFs?.confined ?? false;
  }

  /** The import object: { wasi_snapshot_preview1: {...} }. */
  get imports(): Bun.WebAssembly.Imports {
    this.#imports ??= { wasi_snapshot_preview1: this.#functions() };
    return this.#imports;
  }

  /**
   * Binds the memory WASI calls read and write: the instance's exported `memory`, or `memory` when the module
   * imports its memory instead of exporting it. Call before _start.
   */
  bind(instance: WebAssembly.Instance, memory?: WebAssembly.Memory): void {
    const chosen = memory ?? instance.exports.memory;
    if (!(chosen instanceof WebAssembly.Memory)) {
      throw new MagikError("InvalidInput", "the module does not export its memory as `memory`");
    }
    this.#memory = chosen;
  }

  #bindForEntry(instance: WebAssembly.Instance): void {
    // An explicit bind (imported memory) stays; otherwise the exported memory is the one.
    if (instance.exports.memory instanceof WebAssembly.Memory || this.#memory === undefined)
      this.bind(instance);
  }

  /** Runs _start and returns the exit code: 0 when it returns, the proc_exit code when the guest exits. */
  start(instance: WebAssembly.Instance): number {
    this.#bindForEntry(instance);
    const entry = instance.exports._start;
    if (typeof entry !== "function") throw new MagikError("InvalidInput", "the module has no _start export");
    try {
      entry();
      return 0;
    } catch (err) {
      if (err instanceof WasiExit) return err.code;
      throw err;
    }
  }

  /** For reactors: runs _initialize when the module has one. */
  initialize(instance: WebAssembly.Instance): void {
    this.#bindForEntry(instance);
    const init = instance.exports._initialize;
    if (init === undefined) return;
    if (typeof init !== "function") throw new MagikError("InvalidInput", "_initialize is not a function");
    init();
  }

  /** Closes every host fd this instance opened (caller-owned stdio and sockets stay open). */
  close(): void {
    this.#fds.closeAll();
    for (const fd of this.#rootFds.splice(0)) closeSync(fd);
  }

  #functions(): WasiFunctions {
    const ctx: WasiContext = {
      fds: this.#fds,
      hostFs: this.#hostFs ?? pathFs,
      mem: () => {
        if (this.#memory === undefined) throw new MemoryNotBound();
        return new GuestView(this.#memory);
      },
    };
    const all: WasiFunctions = {
      ...this.#processCalls(ctx),
      ...fdCalls(ctx),
      ...fdIoCalls(ctx),
      ...pathCalls(ctx),
      ...pollCalls(ctx, this.#clock),
      ...sockCalls(ctx),
    };
    const wrapped: WasiFunctions = {};
    for (const [name, fn] of Object.entries(all)) {
      wrapped[name] = (...args) => {
        try {
          return fn(...args);
        } catch (err) {
          const errno = errnoOf(err);
          if (errno === undefined) throw err;
          return errno;
        }
      };
    }
    return wrapped;
  }

  #processCalls(ctx: WasiContext): WasiFunctions {
    const clock = this.#clock;
    const writeStrings = (list: Uint8Array[], ptrs: number, buf: number): number => {
      const mem = ctx.mem();
      let at = buf;
      list.forEach((bytes, i) => {
        mem.setU32(ptrs + i * 4, at);
        mem.slice(at, bytes.length).set(bytes);
        at += bytes.length;
      });
      return Errno.SUCCESS;
    };
    const writeSizes = (
      packed: { encoded: Uint8Array[]; size: number },
      countPtr: number,
      sizePtr: number,
    ) => {
      const mem = ctx.mem();
      mem.setU32(countPtr, packed.encoded.length);
      mem.setU32(sizePtr, packed.size);
      return Errno.SUCCESS;
    };
    return {
      args_sizes_get: (countPtr: number, sizePtr: number) => writeSizes(this.#args, countPtr, sizePtr),
      args_get: (ptrs: number, buf: number) => writeStrings(this.#args.encoded, ptrs, buf),
      environ_sizes_get: (countPtr: number, sizePtr: number) => writeSizes(this.#env, countPtr, sizePtr),
      environ_get: (ptrs: number, buf: number) => writeStrings(this.#env.encoded, ptrs, buf),
      clock_res_get(id: number, ptr: number): number {
        ctx.mem().setU64(ptr, clockResolution(id));
        return Errno.SUCCESS;
      },
      clock_time_get(id: number, _precision: bigint, ptr: number): number {
        ctx.mem().setU64(ptr, clockNow(clock, id));
        return Errno.SUCCESS;
      },
      random_get(buf: number, len: number): number {
        const target = ctx.mem().slice(buf, len);
        // Filled through a private buffer: guest memory may be shared, which crypto refuses to write into.
        const chunk = new Uint8Array(Math.min(len, RANDOM_CHUNK));
        for (let at = 0; at < len; at += RANDOM_CHUNK) {
          const n = Math.min(RANDOM_CHUNK, len - at);
          crypto.getRandomValues(chunk.subarray(0, n));
          target.set(chunk.subarray(0, n), at);
        }
        return Errno.SUCCESS;
      },
      proc_exit(code: number): number {
        throw new WasiExit(code >>> 0);
      },
      // Signals have no meaning for a wasm instance; preview 1 runtimes report the call as unsupported.
      proc_raise: () => Errno.NOTSUP,
      sched_yield: () => Errno.SUCCESS,
    };
  }
}

/** A call arrived before `bind`: a host bug, surfaced as a trap rather than an errno. */
class MemoryNotBound extends Error {
  constructor() {
    super("WASI call before Wasi.bind(instance): no memory bound");
  }
}
