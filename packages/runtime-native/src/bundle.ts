import { readFileSync } from "node:fs";
import { posix } from "node:path";
import { MagikError } from "@magikrun/spec/errors";
import { parseJsonWith } from "@magikrun/spec/parse";
import type { OciBundle } from "@magikrun/spec/runtime";
import { RuntimeConfig } from "@magikrun/spec/runtime-config";

// The only module of the runtime that builds zod schemas (config.json validation): commands other than
// create/run (start, state, kill, delete) never load it.

/** Reads `<dir>/config.json` into an OCI bundle; a missing or malformed file is an InvalidBundle error. */
export function loadBundle(dir: string): OciBundle {
  const path = posix.resolve(dir);
  let text: string;
  try {
    text = readFileSync(`${path}/config.json`, "utf8");
  } catch (err) {
    const errno = (err as { code?: string }).code ?? "unknown";
    throw new MagikError("InvalidBundle", `cannot read ${path}/config.json: ${errno}`, {
      details: { bundle: path, errno, step: "read config.json" },
    });
  }
  const config = parseJsonWith(RuntimeConfig, text, `${path}/config.json`, "InvalidBundle");
  return { kind: "oci", path, config };
}
