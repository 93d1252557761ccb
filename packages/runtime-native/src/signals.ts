import { MagikError } from "@magikrun/spec/errors";

/** x86_64/arm64 Linux signal numbers. */
export const SIGNALS: Record<string, number> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGILL: 4,
  SIGTRAP: 5,
  SIGABRT: 6,
  SIGIOT: 6,
  SIGBUS: 7,
  SIGFPE: 8,
  SIGKILL: 9,
  SIGUSR1: 10,
  SIGSEGV: 11,
  SIGUSR2: 12,
  SIGPIPE: 13,
  SIGALRM: 14,
  SIGTERM: 15,
  SIGSTKFLT: 16,
  SIGCHLD: 17,
  SIGCONT: 18,
  SIGSTOP: 19,
  SIGTSTP: 20,
  SIGTTIN: 21,
  SIGTTOU: 22,
  SIGURG: 23,
  SIGXCPU: 24,
  SIGXFSZ: 25,
  SIGVTALRM: 26,
  SIGPROF: 27,
  SIGWINCH: 28,
  SIGIO: 29,
  SIGPOLL: 29,
  SIGPWR: 30,
  SIGSYS: 31,
};

const SIGRTMIN = 34;
const SIGRTMAX = 64;

/** Accepts what runc's kill accepts: "KILL", "SIGKILL", "9", 9, "RTMIN+3". */
export function parseSignal(signal: string | number): number {
  const inRange = (n: number) => Number.isInteger(n) && n >= 1 && n <= SIGRTMAX;
  if (typeof signal === "number") {
    if (inRange(signal)) return signal;
  } else {
    const text = signal.trim().toUpperCase();
    if (/^[0-9]+$/.test(text) && inRange(Number(text))) return Number(text);
    const name = text.startsWith("SIG") ? text : `SIG${text}`;
    const known = SIGNALS[name];
    if (known !== undefined) return known;
    const rt = /^[0-9]+$/.test(text) ? null : /^SIGRTM(IN|AX)([+-][0-9]+)?$/.exec(name);
    if (rt) {
      const n = (rt[1] === "IN" ? SIGRTMIN : SIGRTMAX) + Number(rt[2] ?? 0);
      if (n >= SIGRTMIN && n <= SIGRTMAX) return n;
    }
  }
  throw new MagikError("InvalidInput", `unknown signal ${JSON.stringify(signal)}`, {
    details: { signal },
    hint: "Use a name (TERM, SIGKILL) or a number from 1 to 64.",
  });
}

export function signalName(signal: number): string {
  for (const [name, n] of Object.entries(SIGNALS)) if (n === signal) return name;
  if (signal >= SIGRTMIN && signal <= SIGRTMAX) return `SIGRTMIN+${signal - SIGRTMIN}`;
  return String(signal);
}
