/**
 * Test helpers shared by the image, runtime and demo tests: busybox images built from Debian's busybox-static,
 * Debian's docker-registry started on 127.0.0.1 (open, Basic or token auth), and a fault-injecting registry.
 * Not part of the public API of @magikrun/image: tests import it as `@magikrun/image/test-support`.
 */
export * from "./busybox.ts";
export * from "./fault-registry.ts";
export * from "./fixture.ts";
export * from "./registry.ts";
export * from "./token-server.ts";
export * from "./wasm.ts";
