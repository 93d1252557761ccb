import type { Capabilities, Seccomp } from "@magikrun/spec/runtime-config";
import { capabilitySet, dropUnavailableCapabilities, lastCap } from "./capabilities.ts";
import { compileSeccompFilter, nativeArch } from "./seccomp/index.ts";

/**
 * The glue to the capability table (capabilities.ts) and the seccomp compiler (seccomp/): warnings for
 * accepted-but-not-enforced settings go to the runtime's warning sink, never nowhere.
 */
export interface ProcessSecurity {
  capabilities?: Capabilities;
  capabilityMask(names: readonly string[]): bigint;
  lastCap: number;
  seccomp?: { program: Uint8Array; flags: number };
}

export function processSecurity(
  capabilities: Capabilities | undefined,
  seccomp: Seccomp | undefined,
  warn: (message: string) => void,
): ProcessSecurity {
  const last = lastCap();
  const out: ProcessSecurity = { capabilityMask: (names) => capabilitySet(names), lastCap: last };
  if (capabilities) {
    const { capabilities: usable, warnings } = dropUnavailableCapabilities(capabilities, last);
    for (const w of warnings) warn(w);
    out.capabilities = usable;
  }
  if (seccomp) {
    const compiled = compileSeccompFilter(seccomp, nativeArch());
    for (const w of compiled.warnings) warn(w);
    out.seccomp = { program: compiled.program, flags: compiled.flags };
  }
  return out;
}
