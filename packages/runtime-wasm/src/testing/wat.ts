import wabt from "wabt";

let loaded: ReturnType<typeof wabt> | undefined;

/** Builds test modules from WebAssembly text, with the post-MVP features the rewriter claims to handle. */
export async function wat(source: string): Promise<Uint8Array> {
  loaded ??= wabt();
  const module = (await loaded).parseWat("test.wat", source, {
    bulk_memory: true,
    reference_types: true,
    simd: true,
    threads: true,
    tail_call: true,
    multi_value: true,
    sign_extension: true,
    sat_float_to_int: true,
  });
  try {
    module.resolveNames();
    module.validate();
    return module.toBinary({ write_debug_names: true }).buffer;
  } finally {
    module.destroy();
  }
}
