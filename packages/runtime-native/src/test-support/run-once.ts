/**
 * Runs `sh -c "$1"` in a busybox container with a fresh state root and prints the exit code and output as
 * JSON: lets a test run a container in a separate process (e.g. with MAGIKRUN_LAUNCHER_CC=1).
 */
import { NativeRuntime } from "../native-runtime.ts";
import { makeStateRoot } from "./busybox-bundle.ts";
import { runToExit } from "./run.ts";

const state = makeStateRoot();
try {
  const rt = new NativeRuntime({ root: state.root, onWarning: () => {} });
  const result = await runToExit(rt, ["sh", "-c", process.argv[2] ?? "true"]);
  console.log(JSON.stringify({ code: result.exit.code, stdout: result.stdout }));
} finally {
  state.cleanup();
}
