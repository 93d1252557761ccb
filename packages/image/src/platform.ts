import { type Descriptor, MagikError } from "@magikrun/spec";

/** A platform as images name it: `linux/amd64`, `linux/arm64/v8`, `linux/arm/v7`. */
export interface PlatformSpec {
  os: string;
  architecture: string;
  variant?: string;
}

const NODE_ARCH: Record<string, string> = {
  x64: "amd64",
  arm64: "arm64",
  arm: "arm",
  ia32: "386",
  ppc64: "ppc64le",
  s390x: "s390x",
  riscv64: "riscv64",
  loong64: "loong64",
};

/** The platform of this host, in image terms (Node's `x64` is `amd64`). */
export function hostPlatform(): PlatformSpec {
  const architecture = NODE_ARCH[process.arch] ?? process.arch;
  const platform: PlatformSpec = {
    os: process.platform === "win32" ? "windows" : process.platform,
    architecture,
  };
  if (architecture === "arm64") platform.variant = "v8";
  return platform;
}

/** Parses `os/arch[/variant]`; InvalidInput names the value. */
export function parsePlatform(value: string): PlatformSpec {
  const parts = value.split("/");
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[a-z0-9._-]+$/.test(p))) {
    throw new MagikError("InvalidInput", `invalid platform ${JSON.stringify(value)}`, {
      details: { platform: value },
      hint: "Platforms look like os/architecture[/variant], e.g. linux/amd64 or linux/arm64/v8.",
    });
  }
  const [os, architecture, variant] = parts as [string, string, string | undefined];
  const platform: PlatformSpec = { os, architecture: architecture === "x86_64" ? "amd64" : architecture };
  if (variant !== undefined) platform.variant = variant;
  return platform;
}

export function formatPlatform(p: {
  os: string;
  architecture: string;
  variant?: string | undefined;
}): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ""}`;
}

/** arm64 images often omit `v8`; treat a missing variant as the architecture's default. */
function normalizedVariant(architecture: string, variant: string | undefined): string | undefined {
  if (architecture === "arm64" && (variant === undefined || variant === "v8")) return "v8";
  return variant;
}

/**
 * How an index's wasm entries (platform architecture `wasm`, os `wasip1`, `wasi`...) are considered:
 *   - "exact" (an explicit platform was asked for): only entries matching `wanted`;
 *   - "fallback" (the default host platform): entries matching `wanted`, else a wasm entry;
 *   - "prefer" (`magikrun wasm run`): a wasm entry, else entries matching `wanted`.
 * Among wasm entries `wasip1` comes first, then `wasi`, then any other, each in index order.
 */
export type WasmPlatformRule = "exact" | "fallback" | "prefer";

export function isWasmPlatform(p: { architecture: string } | undefined): boolean {
  return p?.architecture === "wasm";
}

function wasmEntry(manifests: readonly Descriptor[]): Descriptor | undefined {
  const wasm = manifests.filter((m) => isWasmPlatform(m.platform));
  return (
    wasm.find((m) => m.platform!.os === "wasip1") ?? wasm.find((m) => m.platform!.os === "wasi") ?? wasm[0]
  );
}

/**
 * Picks the manifest for `wanted` from an index. An exact variant wins; without a wanted variant the first
 * entry of the right os/architecture is taken. Attestation manifests (`unknown/unknown`) never match. `wasm` says
 * how wasm entries are considered (see WasmPlatformRule); default "exact".
 */
export function selectPlatform(
  manifests: readonly Descriptor[],
  wanted: PlatformSpec,
  wasm: WasmPlatformRule = "exact",
): Descriptor {
  const preferred = wasm === "prefer" ? wasmEntry(manifests) : undefined;
  if (preferred) return preferred;
  const candidates = manifests.filter(
    (m) => m.platform && m.platform.os === wanted.os && m.platform.architecture === wanted.architecture,
  );
  const wantedVariant = normalizedVariant(wanted.architecture, wanted.variant);
  const exact = candidates.find(
    (m) => normalizedVariant(m.platform!.architecture, m.platform!.variant) === wantedVariant,
  );
  const chosen =
    exact ??
    (wanted.variant === undefined ? candidates[0] : undefined) ??
    (wasm === "fallback" ? wasmEntry(manifests) : undefined);
  if (!chosen) {
    const available = manifests.filter((m) => m.platform).map((m) => formatPlatform(m.platform!));
    throw new MagikError("ImageNotFound", `the image has no variant for ${formatPlatform(wanted)}`, {
      details: { platform: formatPlatform(wanted), available },
      hint: `Available platforms: ${available.join(", ") || "none"}. Choose one with --platform.`,
    });
  }
  return chosen;
}
