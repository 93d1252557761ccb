export * from "./build-from-dir.ts";
export * from "./docker-config.ts";
export * from "./image-store.ts";
export * from "./import.ts";
export * from "./platform.ts";
export * from "./pull.ts";
export * from "./reference.ts";
export { type FetchedManifest, RegistryClient, type RegistryClientOptions } from "./registry/client.ts";
export * from "./types.ts";
