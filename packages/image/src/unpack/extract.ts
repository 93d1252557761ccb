import fs from "node:fs";
import { enforceLimit, type Limits, MagikError } from "@magikrun/spec";
import { mknodat, O_CLOEXEC, O_PATH } from "../fs-native.ts";
import { fdPath, openInRoot } from "../resolve-in-root.ts";
import { readTar, type TarHeader } from "./tar-reader.ts";
import { type LayerView, UnionView } from "./union-view.ts";
import { lstatOrUndefined, UpperTree } from "./upper-tree.ts";

const { O_CREAT, O_EXCL, O_NOFOLLOW, O_RDONLY, O_WRONLY, O_DIRECTORY, S_IFCHR, S_IFBLK, S_IFIFO } =
  fs.constants;

export interface ExtractOptions {
  /** Empty directory the layer is written into. */
  dir: string;
  /** Layers below, top to bottom (already unpacked, never modified). */
  lowers: LayerView[];
  limits: Pick<Limits, "MAX_FILES_PER_LAYER">;
  /** Root can keep ownership, devices and overlay whiteouts; otherwise they are skipped with warnings. */
  privileged: boolean;
}

export interface ExtractResult {
  entries: number;
  warnings: string[];
  whiteouts: string[];
  opaques: string[];
  /** Whiteouts and opaque dirs are in overlayfs form, so the directory can be an overlay lowerdir. */
  overlayReady: boolean;
}

const WHITEOUT_PREFIX = ".wh.";
const OPAQUE_WHITEOUT = ".wh..wh..opq";
const MAX_WARNINGS = 100;

/** Entry path → components. Absolute paths are made relative (neutralised); `..` is refused outright. */
export function entryComponents(raw: string, warnings: string[] | undefined, field = "path"): string[] {
  if (raw.startsWith("/") && warnings && warnings.length < MAX_WARNINGS) {
    warnings.push(`${raw}: absolute ${field} made relative to the layer root`);
  }
  const parts = raw.split("/").filter((part) => part !== "" && part !== ".");
  if (parts.includes("..")) {
    throw new MagikError("PathTraversal", `tar entry ${field} ${JSON.stringify(raw)} contains '..'`, {
      details: { [field]: raw },
    });
  }
  return parts;
}

/**
 * Unpacks one (decompressed) tar stream into `options.dir`, resolving every entry against the union with the lower
 * layers (see UnionView) and writing only through directory fds inside `dir` (see UpperTree).
 */
export async function extractTar(
  chunks: AsyncIterable<Uint8Array>,
  options: ExtractOptions,
): Promise<ExtractResult> {
  const upper: LayerView = { dir: options.dir, whiteouts: new Set(), opaques: new Set() };
  const view = new UnionView(upper, options.lowers);
  const warnings: string[] = [];
  const tree = new UpperTree(options.dir, view, options.privileged, warnings);
  const dirTimes: Array<{ rel: string; mtime: number }> = [];
  let entries = 0;
  let overlayReady = options.privileged;
  try {
    for await (const { header, body } of readTar(chunks)) {
      entries += 1;
      enforceLimit("MAX_FILES_PER_LAYER", entries, options.limits as Limits, "ImageTooLarge");
      const parts = entryComponents(header.path, warnings);
      const name = parts.pop();
      if (name === undefined) continue; // the layer root itself: its attributes are the image's, not the layer's
      if (name.startsWith(WHITEOUT_PREFIX)) {
        overlayReady = applyWhiteout(tree, view, header, parts, name) && overlayReady;
        continue;
      }
      const parent = view.resolveParent(parts, header.path);
      const parentFd = tree.dirFd(parent.parts);
      const rel = [...parent.parts, name].join("/");
      const state = tree.clear(parentFd, name, rel, header.type === "dir");
      if (upper.whiteouts.delete(rel) && header.type === "dir") upper.opaques.add(rel);
      switch (header.type) {
        case "file":
          await writeFile(tree, header, body, parentFd, name);
          break;
        case "dir": {
          if (state === "cleared") fs.mkdirSync(fdPath(parentFd, name), (header.mode & 0o777) | 0o700);
          const fd = fs.openSync(fdPath(parentFd, name), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
          try {
            tree.applyMetadata(header, { fd, parentFd, name });
            if (upper.opaques.has(rel)) overlayReady = tree.markOpaque(fd, rel) && overlayReady;
          } finally {
            fs.closeSync(fd);
          }
          view.upperDirs.add(rel);
          dirTimes.push({ rel, mtime: header.mtime });
          break;
        }
        case "symlink":
          fs.symlinkSync(header.linkpath, fdPath(parentFd, name));
          tree.applyMetadata(header, { parentFd, name });
          break;
        case "hardlink":
          linkEntry(tree, view, header, parentFd, name, warnings);
          break;
        default:
          if (!makeSpecial(tree, header, parentFd, name, warnings)) continue;
          if (header.type === "char" && header.devmajor === 0 && header.devminor === 0)
            upper.whiteouts.add(rel);
      }
    }
    for (const { rel, mtime } of dirTimes.reverse()) {
      let fd: number;
      try {
        fd = openInRoot(tree.rootFd, rel, O_PATH | O_DIRECTORY, "no-symlinks");
      } catch {
        continue; // a later entry replaced the directory
      }
      try {
        fs.utimesSync(fdPath(fd), new Date(mtime * 1000), new Date(mtime * 1000));
      } finally {
        fs.closeSync(fd);
      }
    }
  } finally {
    tree.close();
  }
  return {
    entries,
    warnings,
    whiteouts: [...upper.whiteouts].sort(),
    opaques: [...upper.opaques].sort(),
    overlayReady,
  };
}

async function writeFile(
  tree: UpperTree,
  header: TarHeader,
  body: AsyncIterable<Uint8Array>,
  parentFd: number,
  name: string,
): Promise<void> {
  // Created with the entry's permission bits, so the usual modes need no chmod afterwards (see applyMetadata).
  const mode = header.mode & 0o777;
  const fd = fs.openSync(fdPath(parentFd, name), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  try {
    for await (const chunk of body) {
      let offset = 0;
      while (offset < chunk.length) offset += fs.writeSync(fd, chunk, offset, chunk.length - offset);
    }
    tree.applyMetadata(header, { fd, parentFd, name });
  } finally {
    fs.closeSync(fd);
  }
}

/** `.wh.<name>` hides a lower entry, `.wh..wh..opq` a lower directory's content; never through a symlink. */
function applyWhiteout(
  tree: UpperTree,
  view: UnionView,
  header: TarHeader,
  parts: string[],
  name: string,
): boolean {
  const parent = view.resolveParent(parts, header.path, false);
  const upper = view.layers[0]!;
  if (name === OPAQUE_WHITEOUT) {
    const dirFd = tree.dirFd(parent.parts);
    const fd = fs.openSync(fdPath(dirFd), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    try {
      return tree.markOpaque(fd, parent.parts.join("/"));
    } finally {
      fs.closeSync(fd);
    }
  }
  const target = name.slice(WHITEOUT_PREFIX.length);
  if (target === "" || target === "." || target === ".." || target.startsWith(WHITEOUT_PREFIX)) {
    if (tree.warnings.length < MAX_WARNINGS)
      tree.warnings.push(`${header.path}: unsupported whiteout ignored`);
    return true;
  }
  const rel = [...parent.parts, target].join("/");
  const parentFd = tree.dirFd(parent.parts);
  const existing = lstatOrUndefined(fdPath(parentFd, target));
  if (existing) {
    // Made by this layer already: a whiteout only hides lower layers, so the entry stays; a directory hides
    // the lower one's content.
    if (!existing.isDirectory()) return true;
    const fd = fs.openSync(fdPath(parentFd, target), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    try {
      return tree.markOpaque(fd, rel);
    } finally {
      fs.closeSync(fd);
    }
  }
  upper.whiteouts.add(rel);
  if (!tree.privileged) return false;
  try {
    tree.markCreated(rel);
    mknodat(parentFd, target, S_IFCHR, 0, 0);
    return true;
  } catch {
    return false;
  }
}

/** Hardlinks point at an earlier entry of this layer, or at a lower layer's file (copied up first). */
function linkEntry(
  tree: UpperTree,
  view: UnionView,
  header: TarHeader,
  parentFd: number,
  name: string,
  warnings: string[],
): void {
  const targetParts = entryComponents(header.linkpath, warnings, "linkpath");
  const targetName = targetParts.pop();
  const fail = (why: string) =>
    new MagikError("LayerExtractionFailed", `hardlink ${header.path} -> ${header.linkpath}: ${why}`, {
      details: { path: header.path, linkpath: header.linkpath },
    });
  if (targetName === undefined) throw fail("the target is the root");
  const targetParent = view.resolveParent(targetParts, header.linkpath);
  const targetRel = [...targetParent.parts, targetName].join("/");
  const found = view.lookup(targetRel);
  if (!found) throw fail("the target does not exist");
  if (found.kind === "dir") throw fail("the target is a directory");
  const targetParentFd = tree.dirFd(targetParent.parts);
  if (found.index > 0) {
    tree.markCreated(targetRel);
    copyUp(tree, view.layers[found.index]!.dir, targetRel, targetParentFd, targetName);
  }
  fs.linkSync(fdPath(targetParentFd, targetName), fdPath(parentFd, name));
}

/** Copies a lower layer's file or symlink into this layer, with its attributes (overlayfs copy-up). */
function copyUp(tree: UpperTree, lowerDir: string, rel: string, parentFd: number, name: string): void {
  const source = `${lowerDir}/${rel}`;
  const stat = fs.lstatSync(source);
  const header = {
    path: rel,
    uid: stat.uid,
    gid: stat.gid,
    mode: stat.mode & 0o7777,
    mtime: stat.mtimeMs / 1000,
    xattrs: new Map<string, Uint8Array>(),
  };
  if (stat.isSymbolicLink()) {
    fs.symlinkSync(fs.readlinkSync(source), fdPath(parentFd, name));
    tree.applyMetadata({ ...header, type: "symlink" } as TarHeader, { parentFd, name });
    return;
  }
  if (!stat.isFile()) {
    throw new MagikError("LayerExtractionFailed", `hardlink target ${rel} is not a regular file`, {
      details: { path: rel },
    });
  }
  fs.copyFileSync(source, fdPath(parentFd, name), fs.constants.COPYFILE_EXCL);
  const fd = fs.openSync(fdPath(parentFd, name), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  try {
    tree.applyMetadata({ ...header, type: "file" } as TarHeader, { fd, parentFd, name });
  } finally {
    fs.closeSync(fd);
  }
}

/** Device nodes and fifos: made when running as root; otherwise skipped with a warning. */
function makeSpecial(
  tree: UpperTree,
  header: TarHeader,
  parentFd: number,
  name: string,
  warnings: string[],
): boolean {
  if (!tree.privileged) {
    if (warnings.length < MAX_WARNINGS)
      warnings.push(`${header.path}: ${header.type} skipped (not running as root)`);
    return false;
  }
  const typeBits = header.type === "char" ? S_IFCHR : header.type === "block" ? S_IFBLK : S_IFIFO;
  mknodat(parentFd, name, typeBits | 0o600, header.devmajor, header.devminor);
  const fd = fs.openSync(fdPath(parentFd, name), O_PATH | O_NOFOLLOW | O_CLOEXEC);
  try {
    fs.chownSync(fdPath(fd), header.uid, header.gid);
    fs.chmodSync(fdPath(fd), header.mode);
    const time = new Date(header.mtime * 1000);
    fs.utimesSync(fdPath(fd), time, time);
  } finally {
    fs.closeSync(fd);
  }
  return true;
}
