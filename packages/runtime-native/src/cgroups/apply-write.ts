import { posix } from "node:path";
import { MagikError, type MagikErrorCode } from "@magikrun/spec/errors";
import { type CgroupFs, errnoOf } from "./fs.ts";
import type { PlannedWrite } from "./plan.ts";

/** Which control files exist, asked once per file and directory: the devices rules write one file a dozen times. */
export type ExistsCache = Map<string, boolean>;

export interface ChosenFile {
  file: string;
  value: string;
}

async function fileExists(fs: CgroupFs, path: string, cache: ExistsCache): Promise<boolean> {
  let known = cache.get(path);
  if (known === undefined) {
    known = await fs.exists(path);
    cache.set(path, known);
  }
  return known;
}

/** The first of the write's files this kernel has; NotSupported when it has none. */
export async function chooseFile(
  fs: CgroupFs,
  dir: string,
  w: PlannedWrite,
  cache: ExistsCache,
): Promise<ChosenFile> {
  for (const choice of w.choices) {
    if (await fileExists(fs, posix.join(dir, choice.file), cache)) return choice;
  }
  const files = w.choices.map((c) => c.file);
  throw new MagikError(
    "NotSupported",
    `linux.resources.${w.field}: this kernel has no ${files.join(" or ")}`,
    {
      details: { field: `linux.resources.${w.field}`, controller: w.controller, files, path: dir },
      hint: `The ${w.controller} controller here cannot enforce ${w.field}; remove it from the config.`,
    },
  );
}

const REFUSED = ["EINVAL", "ERANGE", "EOVERFLOW"];

export interface WriteOptions {
  /** Code for failures other than a refused value; CreateFailed while creating a container. */
  failCode?: MagikErrorCode;
  /** Errnos meaning "the kernel refused this value" (InvalidInput); default EINVAL, ERANGE, EOVERFLOW. */
  refused?: readonly string[];
}

/** Writes one chosen value; a value the kernel refuses is InvalidInput with the file, value and errno. */
export async function writeChosen(
  fs: CgroupFs,
  dir: string,
  w: PlannedWrite,
  chosen: ChosenFile,
  options: WriteOptions = {},
): Promise<void> {
  try {
    await fs.write(posix.join(dir, chosen.file), chosen.value);
  } catch (err) {
    const errno = errnoOf(err);
    const refused = errno !== undefined && (options.refused ?? REFUSED).includes(errno);
    const failCode = options.failCode ?? "CreateFailed";
    throw new MagikError(
      refused ? "InvalidInput" : failCode,
      `linux.resources.${w.field}: writing ${JSON.stringify(chosen.value)} to ${chosen.file} failed (${errno ?? err})`,
      {
        cause: err,
        details: {
          field: `linux.resources.${w.field}`,
          file: chosen.file,
          value: chosen.value,
          path: dir,
          errno,
        },
        ...(refused ? { hint: "The kernel refused the value; check its range and format." } : {}),
      },
    );
  }
}

export async function applyWrite(
  fs: CgroupFs,
  dir: string,
  w: PlannedWrite,
  cache: ExistsCache,
): Promise<void> {
  await writeChosen(fs, dir, w, await chooseFile(fs, dir, w, cache));
}
