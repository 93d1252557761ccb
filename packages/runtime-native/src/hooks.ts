import { MagikError } from "@magikrun/spec/errors";
import type { Hook } from "@magikrun/spec/runtime-config";
import type { ContainerState } from "@magikrun/spec/state";

export type HookName =
  | "prestart"
  | "createRuntime"
  | "createContainer"
  | "startContainer"
  | "poststart"
  | "poststop";

/**
 * Runs hooks in order with the container's state on stdin (runtime-spec "Lifecycle"). A hook that fails or
 * outlives its timeout is killed and reported with its name, path and exit status.
 */
export async function runHooks(
  name: HookName,
  hooks: readonly Hook[] | undefined,
  state: ContainerState,
): Promise<void> {
  for (const [index, hook] of (hooks ?? []).entries()) {
    const proc = Bun.spawn({
      cmd: [hook.path, ...(hook.args?.slice(1) ?? [])],
      argv0: hook.args?.[0] ?? hook.path,
      env: Object.fromEntries(
        (hook.env ?? []).map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)]),
      ),
      stdin: new Blob([JSON.stringify(state)]),
      stdout: "ignore",
      stderr: "pipe",
    });
    let timedOut = false;
    const timer = hook.timeout
      ? setTimeout(() => {
          timedOut = true;
          proc.kill(9);
        }, hook.timeout * 1000)
      : undefined;
    const code = await proc.exited;
    if (timer) clearTimeout(timer);
    if (code !== 0 || timedOut) {
      const stderr = await new Response(proc.stderr).text();
      throw new MagikError(
        name === "poststop" ? "DeleteFailed" : "CreateFailed",
        `${name} hook ${index} (${hook.path}) ${timedOut ? `timed out after ${hook.timeout}s` : `exited with ${code}`}`,
        {
          details: {
            hook: name,
            index,
            path: hook.path,
            exitCode: code,
            timedOut,
            stderr: stderr.slice(0, 2000),
          },
          hint: "Fix or remove the hook in config.json.",
        },
      );
    }
  }
}
