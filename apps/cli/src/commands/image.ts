import { MagikError } from "@magikrun/spec";
import type { GlobalOptions } from "../cli.ts";

// Placeholder until the image commands land; the route table in main.ts already points here.
export async function run(command: string, _args: string[], _globals: GlobalOptions): Promise<number> {
  throw new MagikError("NotSupported", `command ${command} is not available in this build`, {
    details: { command },
  });
}
