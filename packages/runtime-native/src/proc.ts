import { readFileSync } from "node:fs";

export interface ProcStat {
  /** One-letter state: R, S, D, Z, T... */
  state: string;
  /** Clock ticks since boot when the process started: with the pid, identifies one process across pid reuse. */
  startTime: number;
}

/** Parses /proc/<pid>/stat; undefined when the process does not exist. */
export function readProcStat(pid: number, procRoot = "/proc"): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`${procRoot}/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  return parseProcStat(text);
}

export function parseProcStat(text: string): ProcStat | undefined {
  // comm may contain spaces and parentheses: fields start after the last ')'.
  const close = text.lastIndexOf(")");
  if (close < 0) return undefined;
  const fields = text.slice(close + 2).split(" ");
  const state = fields[0];
  const startTime = Number(fields[19]);
  if (!state || !Number.isFinite(startTime)) return undefined;
  return { state, startTime };
}

/** True when `pid` is the same live (not zombie) process that had `startTime`. */
export function isSameLiveProcess(pid: number, startTime: number | undefined): boolean {
  const stat = readProcStat(pid);
  if (!stat || stat.state === "Z" || stat.state === "X") return false;
  return startTime === undefined || stat.startTime === startTime;
}
