import fs from "node:fs";
import path from "node:path";
import {
  enforceLimit,
  isMagikError,
  MagikError,
  type MicroVmBundle,
  type OciBundle,
  toMagikError,
  validateContainerId,
  type WasiPreopen,
  type WasmBundle,
} from "@magikrun/spec";
import { type LayerBlobSource, LayerCache, type LayerCacheOptions } from "../layer-cache.ts";
import { type AssembleOptions, RootfsManager } from "../rootfs.ts";
import { LAYOUT, type ResolvedImage } from "../types.ts";
import { buildOciConfig, type ContainerOverrides, type ProcessSpec, processSpec } from "./oci-config.ts";
import { resolveUser } from "./user.ts";
import { copyArtifactModule, copyRootfsModule, isCompatVariant, wasmLayer } from "./wasm-module.ts";
import { artifactRootfs, buildWasmOciConfig } from "./wasm-oci.ts";

/**
 * Builds the three bundle kinds for a container from a resolved image. Every bundle directory
 * (`<root>/bundles/<id>/`) belongs to one container and is created exclusively: an existing one is refused, and a
 * failed build removes what it made (bundle dir and rootfs).
 */

export interface WasmOverrides
  extends Pick<ContainerOverrides, "args" | "entrypoint" | "cmd" | "env" | "cwd"> {
  preopens?: WasiPreopen[];
  fuel?: number;
  maxMemoryPages?: number;
  timeoutMs?: number;
}

export interface MicroVmOverrides
  extends Pick<ContainerOverrides, "args" | "entrypoint" | "cmd" | "env" | "cwd"> {
  vcpus?: number;
  memoryMiB?: number;
}

export class BundleBuilder {
  readonly root: string;
  readonly rootfs: RootfsManager;
  readonly #cache: LayerCache;
  readonly #blobs: LayerBlobSource;

  constructor(cache: LayerCache, blobs: LayerBlobSource) {
    this.#cache = cache;
    this.#blobs = blobs;
    this.root = cache.root;
    this.rootfs = new RootfsManager(cache);
  }

  /** A builder over a blob store's root (layers, rootfs and bundles live beside the blobs). */
  static fromStore(
    store: LayerBlobSource & { root: string },
    options: LayerCacheOptions = {},
  ): BundleBuilder {
    return new BundleBuilder(new LayerCache(store.root, store, options), store);
  }

  bundleDir(id: string): string {
    return path.join(this.root, LAYOUT.bundles, validateContainerId(id));
  }

  #createDir(id: string): string {
    const dir = this.bundleDir(id);
    fs.mkdirSync(path.dirname(dir), { recursive: true, mode: 0o711 });
    try {
      fs.mkdirSync(dir, 0o700);
    } catch (err) {
      if ((err as { code?: string }).code === "EEXIST") {
        throw new MagikError("ContainerAlreadyExists", `a bundle for ${id} already exists`, {
          details: { id, path: dir },
        });
      }
      throw toMagikError(err, "BundleBuildFailed", `cannot create the bundle directory ${dir}`);
    }
    return dir;
  }

  async #build<T>(id: string, steps: (dir: string) => Promise<T>): Promise<T> {
    const dir = this.#createDir(id);
    try {
      return await steps(dir);
    } catch (err) {
      // An existing rootfs belongs to a container with this id: it is not ours to remove.
      if (!isMagikError(err, "ContainerAlreadyExists")) this.rootfs.release(id);
      fs.rmSync(dir, { recursive: true, force: true });
      throw toMagikError(err, "BundleBuildFailed", `cannot build the bundle of ${id}`);
    }
  }

  /** An OCI runtime bundle: rootfs (overlay or copy) and config.json. */
  async buildOci(
    image: ResolvedImage,
    id: string,
    overrides: ContainerOverrides = {},
    assemble: AssembleOptions = {},
  ): Promise<OciBundle> {
    return this.#build(id, async (dir) => {
      const rootfs = await this.rootfs.assemble(image, id, assemble);
      const user = resolveUser(rootfs.path, overrides.user ?? image.config.config?.User);
      const config = buildOciConfig({ image: image.config, overrides, user, rootfsPath: rootfs.path, id });
      writeJsonAtomic(path.join(dir, "config.json"), config);
      return { kind: "oci", path: dir, config };
    });
  }

  /**
   * A wasm bundle: the module of a wasm artifact, or the `.wasm` entrypoint of an ordinary image (any entrypoint
   * when the image is annotated `module.wasm.image/variant=compat`), whose rootfs is then assembled and preopened
   * as `/`. The directory holds bundle.json (the WasmBundle returned) and a config.json describing the same
   * instance runc-style (see wasm-oci.ts), so `magikrun run --bundle` runs it too.
   */
  async buildWasm(image: ResolvedImage, id: string, overrides: WasmOverrides = {}): Promise<WasmBundle> {
    const limits = this.#cache.limits;
    if (overrides.fuel !== undefined && !(Number.isSafeInteger(overrides.fuel) && overrides.fuel > 0)) {
      throw new MagikError("InvalidInput", "fuel must be a positive integer", {
        details: { fuel: overrides.fuel },
      });
    }
    if (overrides.maxMemoryPages !== undefined) {
      enforceLimit("MAX_WASM_MEMORY_PAGES", overrides.maxMemoryPages, limits, "InvalidInput");
    }
    if (
      overrides.timeoutMs !== undefined &&
      !(Number.isSafeInteger(overrides.timeoutMs) && overrides.timeoutMs > 0)
    ) {
      throw new MagikError("InvalidInput", "timeoutMs must be a positive integer", {
        details: { timeoutMs: overrides.timeoutMs },
      });
    }
    // Absolute host paths: both files are read later, from any working directory.
    const extra = (overrides.preopens ?? []).map(
      (p): WasiPreopen => ({
        guestPath: p.guestPath,
        hostPath: path.resolve(p.hostPath),
        ...(p.readonly && { readonly: true }),
      }),
    );
    return this.#build(id, async (dir) => {
      const modulePath = path.join(dir, "module.wasm");
      const layer = wasmLayer(image);
      let proc: ProcessSpec;
      let moduleDigest: string;
      let rootfsPath: string;
      const preopens = [...extra];
      if (layer) {
        moduleDigest = await copyArtifactModule(this.#blobs, layer, modulePath, limits.MAX_WASM_MODULE_SIZE);
        const hasCommand =
          (image.config.config?.Entrypoint?.length ?? 0) + (image.config.config?.Cmd?.length ?? 0);
        // Without a command in the image the module itself is the entrypoint; a given cmd becomes its arguments.
        proc = processSpec(
          image.config,
          hasCommand || overrides.args || overrides.entrypoint
            ? overrides
            : { ...overrides, entrypoint: ["module.wasm"], cmd: overrides.cmd ?? [] },
        );
        rootfsPath = artifactRootfs(dir, modulePath, proc);
      } else {
        proc = processSpec(image.config, overrides);
        const entry = proc.args[0]!;
        // An entrypoint without the suffix is taken when the image is annotated compat (its magic is checked).
        if (!entry.endsWith(".wasm") && !isCompatVariant(image)) {
          throw new MagikError(
            "InvalidBundle",
            "the image is neither a wasm artifact nor has a .wasm entrypoint",
            {
              details: { entrypoint: entry, layers: image.manifest.layers.map((l) => l.mediaType) },
              hint: "Wasm images are wasm OCI artifacts, or images whose entrypoint is a .wasm file or annotated module.wasm.image/variant=compat.",
            },
          );
        }
        const rootfs = await this.rootfs.assemble(image, id);
        rootfsPath = rootfs.path;
        moduleDigest = await copyRootfsModule(
          rootfs.path,
          entry,
          proc.cwd,
          modulePath,
          limits.MAX_WASM_MODULE_SIZE,
        );
        // A preopen of "/" given by the caller takes the rootfs's place (config.json: a bind mount on "/").
        if (!preopens.some((p) => p.guestPath === "/")) {
          preopens.unshift({ guestPath: "/", hostPath: rootfs.path });
        }
      }
      const bundle: WasmBundle = {
        kind: "wasm",
        path: dir,
        modulePath,
        moduleDigest,
        args: proc.args,
        env: proc.env,
        preopens,
        fuel: overrides.fuel ?? limits.DEFAULT_WASM_FUEL,
      };
      if (overrides.maxMemoryPages !== undefined) bundle.maxMemoryPages = overrides.maxMemoryPages;
      if (overrides.timeoutMs !== undefined) bundle.timeoutMs = overrides.timeoutMs;
      const config = buildWasmOciConfig({
        image: image.config,
        process: proc,
        rootfsPath,
        id,
        preopenRootfs: !layer,
        preopens: extra,
        fuel: bundle.fuel!,
        ...(bundle.maxMemoryPages !== undefined && { maxMemoryPages: bundle.maxMemoryPages }),
        ...(bundle.timeoutMs !== undefined && { timeoutMs: bundle.timeoutMs }),
      });
      writeJsonAtomic(path.join(dir, "config.json"), config);
      writeJsonAtomic(path.join(dir, "bundle.json"), bundle);
      return bundle;
    });
  }

  /** A microVM bundle: the rootfs plus command, environment and working directory. */
  async buildMicroVm(
    image: ResolvedImage,
    id: string,
    overrides: MicroVmOverrides = {},
    assemble: AssembleOptions = {},
  ): Promise<MicroVmBundle> {
    const limits = this.#cache.limits;
    if (overrides.vcpus !== undefined) enforceLimit("MAX_VCPUS", overrides.vcpus, limits, "InvalidInput");
    if (overrides.memoryMiB !== undefined) {
      enforceLimit("MAX_VM_MEMORY_MIB", overrides.memoryMiB, limits, "InvalidInput");
    }
    return this.#build(id, async (dir) => {
      const proc = processSpec(image.config, overrides);
      const rootfs = await this.rootfs.assemble(image, id, assemble);
      const bundle: MicroVmBundle = { kind: "microvm", path: dir, rootfs: rootfs.path, ...proc };
      if (overrides.vcpus !== undefined) bundle.vcpus = overrides.vcpus;
      if (overrides.memoryMiB !== undefined) bundle.memoryMiB = overrides.memoryMiB;
      writeJsonAtomic(path.join(dir, "bundle.json"), bundle);
      return bundle;
    });
  }

  /** Removes a container's bundle and root filesystem. Idempotent. */
  remove(id: string): void {
    this.rootfs.release(id);
    fs.rmSync(this.bundleDir(id), { recursive: true, force: true });
  }
}

function writeJsonAtomic(file: string, value: unknown): void {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o644 });
  fs.renameSync(tmp, file);
}
