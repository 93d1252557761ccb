import fs from "node:fs";
import path from "node:path";
import { type Descriptor, MagikError, MediaTypes, WASM_ANNOTATIONS } from "@magikrun/spec";
import { O_CLOEXEC } from "../fs-native.ts";
import type { LayerBlobSource } from "../layer-cache.ts";
import { openInRoot } from "../resolve-in-root.ts";
import type { ResolvedImage } from "../types.ts";

/** `\0asm`: every WebAssembly binary module starts with it. */
const WASM_MAGIC = [0x00, 0x61, 0x73, 0x6d];

/** Set by wasm image builders (buildah, buildx) on images whose entrypoint is a module: "compat", "compat-smart". */
export const WASM_VARIANT_ANNOTATION = WASM_ANNOTATIONS.variant;

/** Whether the image says its entrypoint is a wasm module (manifest annotation or config label). */
export function isCompatVariant(image: ResolvedImage): boolean {
  const variant =
    image.manifest.annotations?.[WASM_VARIANT_ANNOTATION] ??
    image.config.config?.Labels?.[WASM_VARIANT_ANNOTATION] ??
    "";
  return variant.startsWith("compat");
}

export function wasmLayer(image: ResolvedImage): Descriptor | undefined {
  return image.manifest.layers.find((layer) => layer.mediaType === MediaTypes.wasmLayer);
}

function tooLarge(size: number, max: number, source: string): MagikError {
  return new MagikError("ImageTooLarge", `the wasm module is larger than MAX_WASM_MODULE_SIZE`, {
    details: { limit: "MAX_WASM_MODULE_SIZE", max, value: size, source },
  });
}

/**
 * Copies a module to `dest` from a chunk stream, enforcing the size limit while copying, checking the wasm magic
 * and returning the sha256 of what was written.
 */
async function writeModule(
  chunks: AsyncIterable<Uint8Array>,
  dest: string,
  maxBytes: number,
  source: string,
): Promise<string> {
  const hasher = new Bun.CryptoHasher("sha256");
  const fd = fs.openSync(
    dest,
    fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | O_CLOEXEC,
    0o644,
  );
  let size = 0;
  let head = new Uint8Array(0);
  try {
    for await (const chunk of chunks) {
      size += chunk.length;
      if (size > maxBytes) throw tooLarge(size, maxBytes, source);
      if (head.length < 4) head = new Uint8Array([...head, ...chunk.subarray(0, 4 - head.length)]);
      hasher.update(chunk);
      let offset = 0;
      while (offset < chunk.length) offset += fs.writeSync(fd, chunk, offset, chunk.length - offset);
    }
  } finally {
    fs.closeSync(fd);
  }
  if (!WASM_MAGIC.every((byte, i) => head[i] === byte)) {
    throw new MagikError("InvalidBundle", `${source} is not a WebAssembly module (no \\0asm header)`, {
      details: { source },
    });
  }
  return `sha256:${hasher.digest("hex")}`;
}

/** The module of a wasm artifact (layer media type application/vnd.wasm.content.layer.v1+wasm). */
export async function copyArtifactModule(
  blobs: LayerBlobSource,
  layer: Descriptor,
  dest: string,
  maxBytes: number,
): Promise<string> {
  if (layer.size > maxBytes) throw tooLarge(layer.size, maxBytes, layer.digest);
  const digest = await writeModule(await blobs.open(layer.digest), dest, maxBytes, layer.digest);
  if (digest !== layer.digest) {
    throw new MagikError("DigestMismatch", "the wasm module does not match its layer digest", {
      details: { expected: layer.digest, actual: digest },
    });
  }
  return digest;
}

/** A `.wasm` file inside an image's rootfs (resolved in-root from the working directory). */
export async function copyRootfsModule(
  rootfs: string,
  modulePath: string,
  cwd: string,
  dest: string,
  maxBytes: number,
): Promise<string> {
  const rel = path.posix.resolve(cwd, modulePath).slice(1);
  const rootFd = fs.openSync(rootfs, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | O_CLOEXEC);
  let fd: number;
  try {
    fd = openInRoot(rootFd, rel, fs.constants.O_RDONLY, "in-root");
  } catch (err) {
    throw new MagikError("InvalidBundle", `the image has no wasm module at ${modulePath}`, {
      cause: err,
      details: { path: modulePath, errno: (err as { code?: string }).code },
    });
  } finally {
    fs.closeSync(rootFd);
  }
  const stream = fs.createReadStream("", { fd, autoClose: true });
  return writeModule(stream as AsyncIterable<Uint8Array>, dest, maxBytes, modulePath);
}
