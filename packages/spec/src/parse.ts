import { type $ZodType, config, type output, safeParse } from "zod/v4/core";
import { MagikError, type MagikErrorCode } from "./errors.ts";
import "./zod-english.ts";

/**
 * For short-lived processes that validate a document or two (a CLI command): zod compiles a fast parser for each
 * object schema on its first use, which costs more than it saves for a single parse. Same results either way.
 * Affects only schemas built after the call (zod decides at construction), so call it before importing them.
 * (Classic `zod` object schemas compile; `zod/mini` ones never do, so this only matters for the classic ones.)
 */
export function preferOneShotParsing(): void {
  config({ jitless: true });
}

/**
 * Validates data from outside (files, network, users) against a schema, turning zod's issues into one
 * MagikError that names the first offending field. Takes classic (`zod`) and mini (`zod/mini`) schemas alike;
 * this module imports only zod's core, so a caller with mini schemas does not load classic zod.
 */
export function parseWith<T extends $ZodType>(
  schema: T,
  data: unknown,
  what: string,
  code: MagikErrorCode = "InvalidInput",
): output<T> {
  const result = safeParse(schema, data);
  if (result.success) return result.data;
  const issues = result.error.issues.map((issue) => ({
    path: issue.path.map(String).join("."),
    message: issue.message,
  }));
  const first = issues[0];
  const where = first?.path ? ` at ${first.path}` : "";
  throw new MagikError(code, `invalid ${what}${where}: ${first?.message ?? "does not match schema"}`, {
    details: { issues },
  });
}

/** JSON.parse that reports malformed text as a MagikError, then validates it. */
export function parseJsonWith<T extends $ZodType>(
  schema: T,
  text: string,
  what: string,
  code: MagikErrorCode = "InvalidInput",
): output<T> {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new MagikError(code, `${what} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  return parseWith(schema, data, what, code);
}
