// A kernel's uniform struct on the TypeScript side: its fields by name, in the order the WGSL struct
// declares them, and the one function that packs named values into the bytes the shader reads.
// Every field is a 4-byte scalar (u32 or f32), so field i sits at byte 4 * i in WGSL's layout rules;
// kernel-layouts.test.ts parses the WGSL and checks each kernel's struct against its declaration
// here (names, order, types, offsets), so the two cannot drift apart silently.

export type UniformScalar = 'u32' | 'f32';

/**
 * Field name -> scalar type, in WGSL declaration order. Names are the WGSL ones in camelCase
 * (`grad_scale` is `gradScale`; `B`, `T`, `C` stay as they are).
 */
export type UniformStruct = Readonly<Record<string, UniformScalar>>;

/** One value for every field of `S`. */
export type UniformValues<S extends UniformStruct> = { readonly [K in keyof S]: number };

/**
 * The struct's bytes as 32-bit words: u32 fields as unsigned integers (`>>> 0`, as WGSL reads them),
 * f32 fields as their float32 bit patterns.
 */
export function packUniforms<S extends UniformStruct>(struct: S, values: UniformValues<S>): Uint32Array<ArrayBuffer> {
  const fields = Object.entries(struct);
  const words = new Uint32Array(fields.length);
  const floats = new Float32Array(words.buffer);
  fields.forEach(([name, type], i) => {
    const value = values[name];
    if (typeof value !== 'number') throw new TypeError(`uniform field ${name} has no value`);
    if (type === 'u32') words[i] = value >>> 0;
    else floats[i] = value;
  });
  return words;
}

/**
 * The WGSL (snake_case) spelling of a camelCase name: `gradScale` -> `grad_scale`, `nHead` -> `n_head`,
 * `dLogits` -> `d_logits`; a name in capitals alone (M, K, N, B, T, C) is the same in both languages.
 */
export function wgslName(name: string): string {
  if (/^[A-Z]+$/.test(name)) return name;
  return name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();
}
