/**
 * For the CLI's tests: the command run from its sources in a child process, as a user runs it. Output comes
 * back through pipes, so only for commands that leave no process behind holding them (a detached container
 * inherits the CLI's stdio: oci.test.ts sends output to files instead).
 */
export const CLI_MAIN = new URL("./main.ts", import.meta.url).pathname;

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** `bun main.ts ...args`; `env` is added to this process's environment. */
export async function runCli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const proc = Bun.spawn(["bun", CLI_MAIN, ...args], {
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, ...env },
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { code, stdout, stderr };
}
