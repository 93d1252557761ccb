import { MagikError, type Seccomp } from "@magikrun/spec";

/**
 * Capability numbers and seccomp compilation live in modules written alongside this one
 * (src/capabilities.ts, src/seccomp/index.ts). They are loaded by path so that this package typechecks and runs
 * before they exist; the contract is the exported names below.
 */
interface CapabilitiesModule {
  capabilityNumber(name: string): number;
  capabilitySet?(names: readonly string[]): bigint;
}
interface SeccompModule {
  compileSeccomp(seccomp: Seccomp, arch: string): Uint8Array;
}

async function load<T>(relative: string): Promise<T | undefined> {
  try {
    return (await import(new URL(relative, import.meta.url).href)) as T;
  } catch (err) {
    if (
      (err as { code?: string }).code === "ERR_MODULE_NOT_FOUND" ||
      /Cannot find module/.test(String(err))
    ) {
      return undefined;
    }
    throw err;
  }
}

let capabilities: Promise<CapabilitiesModule | undefined> | undefined;
let seccomp: Promise<SeccompModule | undefined> | undefined;

/** Bitmask of capability names; an unknown name is a user error with the name in details. */
export async function capabilityMaskFn(): Promise<(names: readonly string[]) => bigint> {
  capabilities ??= load<CapabilitiesModule>("./capabilities.ts");
  const mod = await capabilities;
  return (names) => {
    if (names.length === 0) return 0n;
    if (!mod) {
      throw new MagikError("NotSupported", "the capability table is not available in this build", {
        details: { capabilities: names },
      });
    }
    if (mod.capabilitySet) return mod.capabilitySet(names);
    let mask = 0n;
    for (const name of names) mask |= 1n << BigInt(mod.capabilityNumber(name));
    return mask;
  };
}

export async function compileSeccompProgram(config: Seccomp): Promise<Uint8Array> {
  seccomp ??= load<SeccompModule>("./seccomp/index.ts");
  const mod = await seccomp;
  if (!mod) {
    throw new MagikError("NotSupported", "seccomp is not available in this build", {
      details: { defaultAction: config.defaultAction },
      hint: "Remove linux.seccomp from config.json.",
    });
  }
  return mod.compileSeccomp(config, process.arch === "arm64" ? "SCMP_ARCH_AARCH64" : "SCMP_ARCH_X86_64");
}
