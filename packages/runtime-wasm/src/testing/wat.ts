import wabt from "wabt";

let loaded: ReturnType<typeof wabt> | undefined;

/** Builds test modules from WebAssembly text, with the post-MVP features the rewriter claims to handle. */
export async function wat(source: string, extra: { exceptions?: boolean } = {}): Promise<Uint8Array> {
  loaded ??= wabt();
  const module = (await loaded).parseWat("test.wat", source, {
    ...extra,
    bulk_memory: true,
    reference_types: true,
    simd: true,
    threads: true,
    tail_call: true,
    multi_value: true,
    sign_extension: true,
    sat_float_to_int: true,
    // Known to wabt 1.0.39, missing from its type declarations.
    ...({ multi_memory: true } as object),
  });
  try {
    module.resolveNames();
    // wabt's validator ignores some enabled features (shared memory, multi-memory): JSC validates instead.
    return module.toBinary({ write_debug_names: true }).buffer;
  } finally {
    module.destroy();
  }
}
