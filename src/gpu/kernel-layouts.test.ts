// The kernel table (kernels.ts) against the WGSL it names, parsed with wgsl_reflect: for every kernel,
// the uniform struct's fields (names, order, types, byte offsets) and the storage bindings (numbers,
// variable names, access) must be what the entry point really uses, so that packUniforms and the
// bind-group layouts cannot drift from the shaders silently. Needs no GPU; it sits in src/gpu with
// the other kernel tests.
import { describe, expect, it } from 'vitest';
import { ResourceType, WgslReflect } from 'wgsl_reflect';
import { KERNELS, type KernelSpec, SHADERS, type ShaderFile } from './kernels';
import { packUniforms, wgslName } from './uniforms';

const reflected = new Map<ShaderFile, WgslReflect>();
function reflect(file: ShaderFile): WgslReflect {
  let r = reflected.get(file);
  if (!r) reflected.set(file, (r = new WgslReflect(SHADERS[file])));
  return r;
}

/** Every way `spec` differs from what its WGSL entry point declares and uses (empty: they agree). */
function layoutMismatches(spec: KernelSpec): string[] {
  const entry = reflect(spec.file).entry.compute.find((e) => e.name === spec.entry);
  if (!entry) return [`shaders/${spec.file}.wgsl has no compute entry point ${spec.entry}`];
  const problems: string[] = [];
  const uniforms = entry.resources.filter((r) => r.resourceType === ResourceType.Uniform);
  if (uniforms.length !== 1 || uniforms[0].group !== 0 || uniforms[0].binding !== 0) {
    problems.push(`expected one uniform at @group(0) @binding(0), found ${uniforms.map((u) => `${u.name}@${u.group}/${u.binding}`).join(', ') || 'none'}`);
  } else {
    const members = (uniforms[0].members ?? []).map((m) => ({ name: m.name, type: m.type.name, offset: m.offset }));
    const declared = Object.entries(spec.uniform).map(([name, type], i) => ({ name: wgslName(name), type, offset: 4 * i }));
    if (JSON.stringify(members) !== JSON.stringify(declared)) {
      problems.push(`uniform ${uniforms[0].type.name}: WGSL ${JSON.stringify(members)}, kernels.ts ${JSON.stringify(declared)}`);
    }
  }
  const storage = entry.resources
    .filter((r) => r.resourceType !== ResourceType.Uniform)
    .map((r) => ({ group: r.group, binding: r.binding, name: r.name, access: r.resourceType === ResourceType.Storage ? r.access : `resource type ${r.resourceType}` }))
    .sort((a, b) => a.binding - b.binding);
  const declared = Object.entries(spec.storage)
    .map(([role, b]) => ({ group: 0, binding: b.binding, name: b.wgslVar ?? wgslName(role), access: b.access }))
    .sort((a, b) => a.binding - b.binding);
  if (JSON.stringify(storage) !== JSON.stringify(declared)) {
    problems.push(`storage: WGSL ${JSON.stringify(storage)}, kernels.ts ${JSON.stringify(declared)}`);
  }
  return problems;
}

describe('kernels.ts agrees with shaders/ (parsed with wgsl_reflect)', () => {
  for (const [name, spec] of Object.entries(KERNELS) as [string, KernelSpec][]) {
    it(`${name}: uniform fields, offsets and storage bindings`, () => {
      expect(layoutMismatches(spec)).toEqual([]);
    });
  }

  it('every compute entry point in shaders/ is a kernel of the table (no dead or unchecked WGSL)', () => {
    const inTable = new Set(Object.values(KERNELS).map((k: KernelSpec) => `${k.file}:${k.entry}`));
    const inShaders = (Object.keys(SHADERS) as ShaderFile[]).flatMap((file) => reflect(file).entry.compute.map((e) => `${file}:${e.name}`));
    expect(inShaders.filter((e) => !inTable.has(e))).toEqual([]);
  });

  it('catches drift: swapped uniform fields, a wrong access and a wrong binding are each reported', () => {
    const adamw: KernelSpec = KERNELS.adamw;
    const [n, lr, ...rest] = Object.entries(adamw.uniform);
    const swapped = { ...adamw, uniform: Object.fromEntries([lr, n, ...rest]) };
    const writable = { ...adamw, storage: { ...adamw.storage, grads: { binding: 2, access: 'read_write' as const } } };
    const moved = { ...adamw, storage: { ...adamw.storage, v: { binding: 5, access: 'read_write' as const } } };
    expect(layoutMismatches(swapped)).toEqual([expect.stringContaining('uniform AdamWParams')]);
    expect(layoutMismatches(writable)).toEqual([expect.stringContaining('storage')]);
    expect(layoutMismatches(moved)).toEqual([expect.stringContaining('storage')]);
  });
});

describe('packUniforms', () => {
  it('writes each field at 4 * its position in the struct, u32 as integers and f32 as float bits', () => {
    const words = packUniforms({ n: 'u32', factor: 'f32', bits: 'u32' }, { factor: -0.5, bits: 0xdeadbeef, n: 7 });
    expect(Array.from(words)).toEqual([7, 0xbf000000, 0xdeadbeef]);
  });

  it('refuses a missing field with its name', () => {
    expect(() => packUniforms({ n: 'u32', lr: 'f32' }, { n: 1 } as never)).toThrow(/uniform field lr has no value/);
  });

  it('wgslName spells camelCase fields as the WGSL snake_case ones', () => {
    expect(['gradScale', 'nHead', 'dLogits', 'M', 'correction1', 'weightDecay'].map(wgslName)).toEqual([
      'grad_scale',
      'n_head',
      'd_logits',
      'M',
      'correction1',
      'weight_decay',
    ]);
  });
});
