const WORKER_URL = new URL("./worker.ts", import.meta.url).href;
const DEFAULT_WASI_URL = new URL("./wasi/index.ts", import.meta.url).href;
/**
 * How long after a take the pool waits before booting the replacement spare, unless told earlier (`warm`, which
 * the runtime calls when an instance ends). A boot costs 20-30 ms of CPU: started at once, on a small machine it
 * slowed the very create that took the spare (measured +5-10 ms on a two-core machine).
 */
export const REFILL_DELAY_MS = 50;

export interface WorkerPoolOptions {
  /** Module exporting the `Wasi` class each Worker loads while booting. */
  wasiUrl?: string;
  /** Booted Workers kept waiting for an instance; 0 boots one per instance on demand. */
  spares?: number;
}

/** A Worker that has loaded its code and WASI, never used by any instance. */
export interface FreshWorker {
  worker: Worker;
  /** Settles when the Worker has booted; rejects with the reason when it could not. */
  booted: Promise<void>;
}

/**
 * Boots Workers ahead of need. Starting a Worker and loading WASI into it costs more than running a small
 * module, so a spare is booted in the background and handed to the next instance. A spare is still used by one
 * instance only and ended with it: pre-booting changes when the Worker starts, not what it shares (nothing).
 * Idle spares are unref'd so they never keep the process alive.
 */
export class WorkerPool {
  readonly wasiUrl: string;
  readonly #spares: FreshWorker[] = [];
  readonly #target: number;
  #closed = false;
  #refillTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(options: WorkerPoolOptions = {}) {
    this.wasiUrl = options.wasiUrl ?? DEFAULT_WASI_URL;
    this.#target = options.spares ?? 1;
  }

  /** A fresh Worker for one instance; the caller owns it from now on. */
  take(): FreshWorker {
    const fresh = this.#spares.shift() ?? this.#boot();
    fresh.worker.ref();
    if (this.#refillTimer === undefined && this.#target > 0) {
      this.#refillTimer = setTimeout(() => this.#refill(), REFILL_DELAY_MS);
      this.#refillTimer.unref();
    }
    return fresh;
  }

  /** Boots the missing spares now rather than on first use or after REFILL_DELAY_MS. */
  warm(): void {
    this.#refill();
  }

  /** Ends the idle spares; Workers already handed out belong to their instances. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#refillTimer);
    for (const spare of this.#spares.splice(0)) spare.worker.terminate();
  }

  #refill(): void {
    clearTimeout(this.#refillTimer);
    this.#refillTimer = undefined;
    while (!this.#closed && this.#spares.length < this.#target) {
      const spare = this.#boot();
      spare.worker.unref();
      // A spare that fails to boot is dropped; the instance that would have taken it boots its own and reports.
      spare.booted.catch(() => {
        const at = this.#spares.indexOf(spare);
        if (at !== -1) this.#spares.splice(at, 1);
        spare.worker.terminate();
      });
      this.#spares.push(spare);
    }
  }

  #boot(): FreshWorker {
    const worker = new Worker(WORKER_URL);
    const booted = new Promise<void>((resolve, reject) => {
      // Listeners, not handlers: the instance that takes the Worker adds its own, maybe before it has booted.
      worker.addEventListener("message", (event: MessageEvent<{ type: string; message?: string }>) => {
        if (event.data.type === "booted") resolve();
        else if (event.data.type === "boot-failed") reject(new Error(event.data.message));
      });
      worker.addEventListener("error", (event) => reject(new Error(event.message)));
    });
    booted.catch(() => {}); // observed by whoever takes the Worker; not an unhandled rejection meanwhile
    worker.postMessage({ type: "boot", wasiUrl: this.wasiUrl });
    return { worker, booted };
  }
}
