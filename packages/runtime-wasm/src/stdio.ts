import { closeSync, openSync } from "node:fs";
import { MagikError, type StdioSpec, type StdioTarget } from "@magikrun/spec";

/** Host descriptors for an instance's standard streams; Workers share the process's descriptor table. */
export interface ResolvedStdio {
  stdin: number | "ignore";
  stdout: number;
  stderr: number;
  /** Descriptors opened here, closed by `close` once the instance has ended. */
  opened: number[];
}

export function openStdio(spec: StdioSpec = {}): ResolvedStdio {
  const opened: number[] = [];
  const open = (
    target: StdioTarget,
    fallback: number,
    stream: "stdin" | "stdout" | "stderr",
  ): number | "ignore" => {
    if (target === "inherit") return fallback;
    if (target === "ignore") {
      if (stream === "stdin") return "ignore";
      return track(openSync("/dev/null", "w"));
    }
    if ("fd" in target) return target.fd;
    try {
      const flags = stream === "stdin" ? "r" : target.append ? "a" : "w";
      return track(openSync(target.path, flags, 0o644));
    } catch (err) {
      close({ opened });
      throw new MagikError("CreateFailed", `cannot open ${stream} file ${target.path}`, {
        cause: err,
        details: { stream, path: target.path, errno: (err as { code?: string }).code },
        hint: "Check that the directory exists and is writable.",
      });
    }
  };
  const track = (fd: number): number => {
    opened.push(fd);
    return fd;
  };
  const stdin = open(spec.stdin ?? "inherit", 0, "stdin");
  const stdout = open(spec.stdout ?? "inherit", 1, "stdout") as number;
  const stderr = open(spec.stderr ?? "inherit", 2, "stderr") as number;
  return { stdin, stdout, stderr, opened };
}

export function close(stdio: Pick<ResolvedStdio, "opened">): void {
  for (const fd of stdio.opened.splice(0)) {
    try {
      closeSync(fd);
    } catch {
      // already closed: nothing left to release
    }
  }
}
