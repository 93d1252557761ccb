/**
 * `magikrun image …`: pull, list, inspect, tag, remove, prune, import and build images in the local store
 * (`--root` / $MAGIKRUN_ROOT). Every command prints JSON with the global `--json`.
 */
import { type ParseArgsConfig, parseArgs } from "node:util";
import {
  buildFromDir,
  displayName,
  type ImageRecord,
  ImageStore,
  importImage,
  LayerCache,
  PullProgressRenderer,
  parseReference,
  pullImage,
  type RegistryCredentials,
} from "@magikrun/image";
import { type ImageRuntimeConfig, MagikError } from "@magikrun/spec";
import type { GlobalOptions } from "../cli.ts";
import { output, storeRoot } from "../cli.ts";

const USAGE = `usage: magikrun image <command> [options]

  pull REF [--platform os/arch[/variant]] [--insecure] [--username U (--password P | --password-stdin)]
           [--timeout SECONDS] [--quiet]
  ls                                     list local images
  inspect REF|ID                         manifest, config and record of an image
  tag SOURCE TARGET                      add a reference to an image
  rm REF|ID...                           remove references (blobs go with prune)
  prune                                  delete blobs and unpacked layers no image references
  import PATH [--reference REF] [--platform P]
                                         from an OCI layout dir, OCI archive or docker save archive
  build-from-dir DIR --reference REF [--cmd ARG]... [--entrypoint ARG]... [--env K=V]... [--workdir DIR]
           [--user U] [--label K=V]... [--expose PORT[/proto]]... [--platform P] [--compression gzip|zstd|none]

REF is [registry[:port]/]name[:tag][@sha256:…]; plain names are on docker.io.`;

type Values = Record<string, string | boolean | string[] | undefined>;

function parse(
  args: string[],
  options: ParseArgsConfig["options"],
): { values: Values; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({
      args,
      options: { ...options, help: { type: "boolean", short: "h" } },
      allowPositionals: true,
      strict: true,
    });
    return { values: values as Values, positionals };
  } catch (err) {
    throw new MagikError("InvalidInput", (err as Error).message, {
      hint: USAGE.split("\n").slice(0, 1).join(""),
    });
  }
}

function positional(positionals: string[], count: number, what: string): string[] {
  if (positionals.length < count) {
    throw new MagikError("InvalidInput", `missing ${what}`, { details: { expected: what }, hint: USAGE });
  }
  return positionals;
}

async function openStore(globals: GlobalOptions): Promise<ImageStore> {
  return ImageStore.open(storeRoot(globals));
}

function formatSize(n: number): string {
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

async function readPasswordStdin(): Promise<string> {
  return (await Bun.stdin.text()).replace(/\r?\n$/, "");
}

async function pull(args: string[], globals: GlobalOptions): Promise<number> {
  const { values, positionals } = parse(args, {
    platform: { type: "string" },
    insecure: { type: "boolean" },
    username: { type: "string", short: "u" },
    password: { type: "string", short: "p" },
    "password-stdin": { type: "boolean" },
    timeout: { type: "string" },
    quiet: { type: "boolean", short: "q" },
  });
  const [reference] = positional(positionals, 1, "image reference");
  let credentials: RegistryCredentials | undefined;
  if (values.username !== undefined) {
    const password = values["password-stdin"]
      ? await readPasswordStdin()
      : (values.password as string | undefined);
    if (password === undefined) {
      throw new MagikError("InvalidInput", "--username needs --password or --password-stdin", {
        details: {},
      });
    }
    credentials = { username: values.username as string, password };
  }
  let timeoutMs: number | undefined;
  if (values.timeout !== undefined) {
    const seconds = Number(values.timeout);
    if (!Number.isFinite(seconds) || seconds <= 0) {
      throw new MagikError("InvalidInput", `--timeout must be a positive number of seconds`, {
        details: { timeout: values.timeout },
      });
    }
    timeoutMs = Math.round(seconds * 1000);
  }
  const store = await openStore(globals);
  const showProgress = !globals.json && !values.quiet;
  const renderer = new PullProgressRenderer({
    write: (text) => process.stderr.write(text),
    isTTY: process.stderr.isTTY === true,
  });
  const controller = new AbortController();
  const onSigint = () => controller.abort();
  process.once("SIGINT", onSigint);
  try {
    const result = await pullImage(reference!, {
      store,
      signal: controller.signal,
      ...(values.platform !== undefined ? { platform: values.platform as string } : {}),
      ...(values.insecure ? { insecureRegistries: [parseReference(reference!).domain] } : {}),
      ...(credentials ? { credentials } : {}),
      ...(timeoutMs !== undefined ? { timeoutMs } : {}),
      ...(showProgress ? { onProgress: renderer.onProgress } : {}),
    });
    output(
      globals,
      { ...result.record, downloaded: result.downloaded },
      () => `${result.record.reference}\n${result.record.manifestDigest}`,
    );
    return 0;
  } finally {
    process.off("SIGINT", onSigint);
  }
}

async function list(args: string[], globals: GlobalOptions): Promise<number> {
  parse(args, {});
  const records = (await openStore(globals)).list();
  output(globals, records, () =>
    table([
      ["REFERENCE", "ID", "PLATFORM", "SIZE", "CREATED"],
      ...records.map((r) => [
        displayName(r),
        r.manifestDigest.slice(7, 19),
        r.platform,
        formatSize(r.size),
        r.created,
      ]),
    ]),
  );
  return 0;
}

async function inspect(args: string[], globals: GlobalOptions): Promise<number> {
  const { positionals } = parse(args, {});
  const [query] = positional(positionals, 1, "image reference or id");
  const store = await openStore(globals);
  const record = store.find(query!)[0]!;
  const image = await store.load(record);
  // Inspect is always JSON: it is a document, not a table.
  console.log(JSON.stringify({ record, manifest: image.manifest, config: image.config }, null, 2));
  return 0;
}

async function tag(args: string[], globals: GlobalOptions): Promise<number> {
  const { positionals } = parse(args, {});
  const [source, target] = positional(positionals, 2, "SOURCE and TARGET");
  const record = await (await openStore(globals)).tag(source!, target!);
  output(globals, record, () => record.reference);
  return 0;
}

async function remove(args: string[], globals: GlobalOptions): Promise<number> {
  const { positionals } = parse(args, {});
  positional(positionals, 1, "image reference or id");
  const store = await openStore(globals);
  const removed: ImageRecord[] = [];
  for (const query of positionals) removed.push(...(await store.remove(query)));
  output(globals, removed, () => removed.map((r) => `untagged ${r.reference}`).join("\n"));
  return 0;
}

async function prune(args: string[], globals: GlobalOptions): Promise<number> {
  parse(args, {});
  const store = await openStore(globals);
  // The layer cache keeps layers that assembled root filesystems still use.
  const layers = new LayerCache(store.root, store.blobs);
  const result = await store.prune((referenced) => layers.prune(referenced));
  output(
    globals,
    result,
    () =>
      `removed ${result.blobsRemoved.length} blobs (${formatSize(result.bytesFreed)}) and ${result.layersRemoved.length} unpacked layers`,
  );
  return 0;
}

async function importCommand(args: string[], globals: GlobalOptions): Promise<number> {
  const { values, positionals } = parse(args, {
    reference: { type: "string" },
    platform: { type: "string" },
  });
  const [path] = positional(positionals, 1, "path of a layout directory or archive");
  const result = await importImage(path!, {
    store: await openStore(globals),
    ...(values.reference !== undefined ? { reference: values.reference as string } : {}),
    ...(values.platform !== undefined ? { platform: values.platform as string } : {}),
  });
  output(globals, result, () => result.records.map((r) => `${r.reference} ${r.manifestDigest}`).join("\n"));
  return 0;
}

function keyValues(values: string[] | undefined, flag: string): Record<string, string> | undefined {
  if (!values?.length) return undefined;
  const out: Record<string, string> = {};
  for (const v of values) {
    const eq = v.indexOf("=");
    if (eq <= 0)
      throw new MagikError("InvalidInput", `${flag} takes KEY=VALUE, got ${JSON.stringify(v)}`, {
        details: { [flag]: v },
      });
    out[v.slice(0, eq)] = v.slice(eq + 1);
  }
  return out;
}

async function build(args: string[], globals: GlobalOptions): Promise<number> {
  const { values, positionals } = parse(args, {
    reference: { type: "string", short: "t" },
    cmd: { type: "string", multiple: true },
    entrypoint: { type: "string", multiple: true },
    env: { type: "string", short: "e", multiple: true },
    workdir: { type: "string", short: "w" },
    user: { type: "string" },
    label: { type: "string", multiple: true },
    expose: { type: "string", multiple: true },
    platform: { type: "string" },
    compression: { type: "string" },
  });
  const [dir] = positional(positionals, 1, "rootfs directory");
  if (typeof values.reference !== "string") {
    throw new MagikError("InvalidInput", "build-from-dir needs --reference NAME[:TAG]", { details: {} });
  }
  const compression = (values.compression as string | undefined) ?? "gzip";
  if (compression !== "gzip" && compression !== "zstd" && compression !== "none") {
    throw new MagikError("InvalidInput", `--compression must be gzip, zstd or none`, {
      details: { compression },
    });
  }
  const env = values.env as string[] | undefined;
  keyValues(env, "--env");
  const config: Partial<ImageRuntimeConfig> = {};
  if (env) config.Env = env;
  if (values.cmd) config.Cmd = values.cmd as string[];
  if (values.entrypoint) config.Entrypoint = values.entrypoint as string[];
  if (values.workdir !== undefined) config.WorkingDir = values.workdir as string;
  if (values.user !== undefined) config.User = values.user as string;
  const labels = keyValues(values.label as string[] | undefined, "--label");
  if (labels) config.Labels = labels;
  const expose = values.expose as string[] | undefined;
  if (expose)
    config.ExposedPorts = Object.fromEntries(expose.map((p) => [p.includes("/") ? p : `${p}/tcp`, {}]));
  const result = await buildFromDir(dir!, {
    store: await openStore(globals),
    reference: values.reference,
    config,
    compression,
    ...(values.platform !== undefined ? { platform: values.platform as string } : {}),
  });
  output(
    globals,
    { ...result.record, diffId: result.diffId, layerDigest: result.layerDigest },
    () => `${result.record.reference}\n${result.record.manifestDigest}`,
  );
  return 0;
}

const COMMANDS: Record<string, (args: string[], globals: GlobalOptions) => Promise<number>> = {
  pull,
  ls: list,
  list,
  images: list,
  inspect,
  tag,
  rm: remove,
  remove,
  rmi: remove,
  prune,
  import: importCommand,
  "build-from-dir": build,
  build,
};

export async function run(_command: string, args: string[], globals: GlobalOptions): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === "help" || sub === "--help" || sub === "-h") {
    console.log(USAGE);
    return sub === undefined ? 2 : 0;
  }
  const handler = COMMANDS[sub];
  if (!handler) {
    throw new MagikError("InvalidInput", `unknown image command ${JSON.stringify(sub)}`, {
      details: { command: sub },
      hint: USAGE,
    });
  }
  if (rest.includes("--help") || rest.includes("-h")) {
    console.log(USAGE);
    return 0;
  }
  return handler(rest, globals);
}
