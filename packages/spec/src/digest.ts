import { MagikError } from "./errors.ts";

export type DigestAlgorithm = "sha256" | "sha512";

export interface ParsedDigest {
  algorithm: DigestAlgorithm;
  hex: string;
  /** `algorithm:hex`, the canonical form. */
  digest: string;
}

const HEX_LEN: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 };

/**
 * Strict digest validation, done before any path is built from a digest: only sha256/sha512 with exactly the
 * right number of lowercase hex digits. Anything else (`../`, uppercase, NUL, other algorithms) is InvalidInput.
 */
export function parseDigest(value: unknown): ParsedDigest {
  if (typeof value !== "string") {
    throw new MagikError("InvalidInput", "digest must be a string", { details: { digest: value } });
  }
  const colon = value.indexOf(":");
  const algorithm = value.slice(0, colon);
  const hex = value.slice(colon + 1);
  if (colon < 0 || (algorithm !== "sha256" && algorithm !== "sha512")) {
    throw new MagikError("InvalidInput", `unsupported digest algorithm in ${JSON.stringify(value)}`, {
      details: { digest: value },
      hint: "Digests look like sha256:<64 lowercase hex digits>.",
    });
  }
  if (hex.length !== HEX_LEN[algorithm] || !/^[0-9a-f]+$/.test(hex)) {
    throw new MagikError("InvalidInput", `malformed ${algorithm} digest ${JSON.stringify(value)}`, {
      details: { digest: value },
      hint: `A ${algorithm} digest has exactly ${HEX_LEN[algorithm]} lowercase hex digits.`,
    });
  }
  return { algorithm, hex, digest: value };
}

export function isDigest(value: unknown): value is string {
  try {
    parseDigest(value);
    return true;
  } catch {
    return false;
  }
}

/** sha256 digest of bytes, in canonical form. */
export function sha256Digest(data: Uint8Array | string): string {
  const hasher = new Bun.CryptoHasher("sha256");
  hasher.update(data);
  return `sha256:${hasher.digest("hex")}`;
}
