import { MagikError } from "@magikrun/spec";

/** Retry and redirect policy of one registry conversation. */
export interface TransportOptions {
  /** Retries after the first attempt, for 5xx/429 answers and dropped connections. */
  retries: number;
  /** First backoff; doubles each retry (with jitter). */
  retryBaseMs: number;
  /** Allow following a redirect from https to http. */
  insecure: boolean;
  signal?: AbortSignal;
}

export const DEFAULT_TRANSPORT: TransportOptions = { retries: 3, retryBaseMs: 200, insecure: false };
const MAX_REDIRECTS = 5;

/** The error to throw once `signal` fired: its reason when it is a MagikError, else Timeout or Cancelled. */
export function abortError(signal: AbortSignal): MagikError {
  const reason: unknown = signal.reason;
  if (reason instanceof MagikError) return reason;
  if ((reason as { name?: string } | undefined)?.name === "TimeoutError") {
    return new MagikError("Timeout", "the operation timed out", { cause: reason });
  }
  return new MagikError("Cancelled", "the operation was cancelled", { cause: reason });
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal));
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError(signal!));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

export function backoffMs(attempt: number, baseMs: number): number {
  return baseMs * 2 ** attempt * (0.75 + Math.random() * 0.5);
}

export function isRetryableStatus(status: number): boolean {
  return status === 429 || (status >= 500 && status !== 501 && status !== 505);
}

/**
 * One HTTP exchange with retries and manual redirects. Authorization is dropped when a redirect leaves the
 * original host (blob downloads are often redirected to object storage), and https→http is refused unless the
 * registry is marked insecure.
 */
export async function send(url: URL, init: RequestInit, options: TransportOptions): Promise<Response> {
  const { signal } = options;
  for (let attempt = 0; ; attempt++) {
    if (signal?.aborted) throw abortError(signal);
    let res: Response;
    try {
      res = await followRedirects(url, init, options);
    } catch (err) {
      if (signal?.aborted) throw abortError(signal);
      if (err instanceof MagikError || attempt >= options.retries) {
        throw err instanceof MagikError
          ? err
          : new MagikError("ImagePullFailed", `cannot reach ${url.host}: ${(err as Error).message}`, {
              details: { url: url.href, attempts: attempt + 1 },
              cause: err,
            });
      }
      await sleep(backoffMs(attempt, options.retryBaseMs), signal);
      continue;
    }
    if (isRetryableStatus(res.status) && attempt < options.retries) {
      await res.body?.cancel().catch(() => {});
      await sleep(backoffMs(attempt, options.retryBaseMs), signal);
      continue;
    }
    return res;
  }
}

async function followRedirects(url: URL, init: RequestInit, options: TransportOptions): Promise<Response> {
  let current = url;
  let headers = new Headers(init.headers);
  for (let hop = 0; ; hop++) {
    const res = await fetch(current, {
      ...init,
      headers,
      redirect: "manual",
      ...(options.signal ? { signal: options.signal } : {}),
    });
    const location = res.headers.get("location");
    if (res.status < 300 || res.status >= 400 || res.status === 304 || !location) return res;
    await res.body?.cancel().catch(() => {});
    if (hop >= MAX_REDIRECTS) {
      throw new MagikError("ImagePullFailed", `too many redirects from ${url.href}`, {
        details: { url: url.href, redirects: hop },
      });
    }
    const next = new URL(location, current);
    if (next.protocol !== "https:" && next.protocol !== "http:") {
      throw new MagikError("ImagePullFailed", `refusing redirect to ${next.protocol} URL`, {
        details: { url: url.href, location: next.href },
      });
    }
    if (current.protocol === "https:" && next.protocol === "http:" && !options.insecure) {
      throw new MagikError("ImagePullFailed", `refusing redirect from https to plain http (${next.host})`, {
        details: { url: url.href, location: next.href },
        hint: "Mark the registry insecure only if you trust the network path.",
      });
    }
    if (next.host !== current.host) {
      headers = new Headers(headers);
      headers.delete("authorization");
    }
    current = next;
  }
}
