export {
  type BlobInfo,
  type BlobStat,
  BlobStore,
  type BlobStoreOptions,
  type GcResult,
  type PutOptions,
  type PutResult,
} from "./blob-store.ts";
export { type BlobLocation, locateBlob } from "./layout.ts";
export { defaultRoot } from "./root.ts";
export type { BlobSource } from "./source.ts";
