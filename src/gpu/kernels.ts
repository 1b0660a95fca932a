// The table of compute kernels: for each, its WGSL file and entry point, its uniform struct (field
// names and types in WGSL order, uniforms.ts) and its storage bindings by role, each with its binding
// number and access ('read' or 'read_write', as the WGSL declares it: kernel-layouts.test.ts parses the
// shaders and checks every entry here against them; docs/wgsl-kernels.md says which inputs are
// read_write although only read, and why). Every pipeline and bind-group layout is built once, when a
// backend is created (never in a step loop).
import attentionWgsl from '../../shaders/attention.wgsl?raw';
import attentionBackwardScoresWgsl from '../../shaders/attention_backward_scores.wgsl?raw';
import attentionCommonWgsl from '../../shaders/attention_common.wgsl?raw';
import biasWgsl from '../../shaders/bias.wgsl?raw';
import clipWgsl from '../../shaders/clip.wgsl?raw';
import embeddingWgsl from '../../shaders/embedding.wgsl?raw';
import fillWgsl from '../../shaders/fill.wgsl?raw';
import geluWgsl from '../../shaders/gelu.wgsl?raw';
import layernormWgsl from '../../shaders/layernorm.wgsl?raw';
import layernormBackwardParamsWgsl from '../../shaders/layernorm_backward_params.wgsl?raw';
import matmulWgsl from '../../shaders/matmul.wgsl?raw';
import moeWgsl from '../../shaders/moe.wgsl?raw';
import optimizerWgsl from '../../shaders/optimizer.wgsl?raw';
import reduceWgsl from '../../shaders/reduce.wgsl?raw';
import reluWgsl from '../../shaders/relu.wgsl?raw';
import residualWgsl from '../../shaders/residual.wgsl?raw';
import softmaxCrossEntropyWgsl from '../../shaders/softmax_cross_entropy.wgsl?raw';
import type { UniformStruct, UniformValues } from './uniforms';

/**
 * Every WGSL module, by name (shaders/<name>.wgsl). The two attention modules start with
 * attention_common.wgsl's struct and helpers (WGSL has no imports; a module is one text).
 */
export const SHADERS = {
  attention: `${attentionCommonWgsl}\n${attentionWgsl}`,
  attention_backward_scores: `${attentionCommonWgsl}\n${attentionBackwardScoresWgsl}`,
  bias: biasWgsl,
  clip: clipWgsl,
  embedding: embeddingWgsl,
  fill: fillWgsl,
  gelu: geluWgsl,
  layernorm: layernormWgsl,
  layernorm_backward_params: layernormBackwardParamsWgsl,
  matmul: matmulWgsl,
  moe: moeWgsl,
  optimizer: optimizerWgsl,
  reduce: reduceWgsl,
  relu: reluWgsl,
  residual: residualWgsl,
  softmax_cross_entropy: softmaxCrossEntropyWgsl,
};
export type ShaderFile = keyof typeof SHADERS;

/**
 * A storage binding: its number, whether the kernel only reads it, and (when it differs from the
 * role's name in snake_case) the WGSL variable's name.
 */
export interface StorageBinding {
  readonly binding: number;
  readonly access: 'read' | 'read_write';
  readonly wgslVar?: string;
}

export interface KernelSpec<U extends UniformStruct = UniformStruct, R extends string = string> {
  readonly file: ShaderFile;
  readonly entry: string;
  /** The struct at binding 0. */
  readonly uniform: U;
  /** Storage bindings by role: the op binds a view to each role. */
  readonly storage: Readonly<Record<R, StorageBinding>>;
}

const read = (binding: number, wgslVar?: string): StorageBinding => ({ binding, access: 'read', wgslVar });
const readWrite = (binding: number, wgslVar?: string): StorageBinding => ({ binding, access: 'read_write', wgslVar });

function kernel<const U extends UniformStruct, R extends string>(
  file: ShaderFile,
  entry: string,
  uniform: U,
  storage: Record<R, StorageBinding>,
): KernelSpec<U, R> {
  return { file, entry, uniform, storage };
}

// --- uniform structs (one object serves the WGSL structs with the same fields) --------------------

const count = { n: 'u32' } as const; // AddParams, ReluParams, GeluParams, CopyParams, SumParams
const scaleParams = { n: 'u32', factor: 'f32' } as const;
const fillParams = { n: 'u32', valueBits: 'u32' } as const;
const rowsCols = { rows: 'u32', cols: 'u32' } as const; // BiasParams, LayerNormParams
const softmaxCrossEntropyParams = { rows: 'u32', cols: 'u32', gradScale: 'f32' } as const;
const embeddingParams = { B: 'u32', T: 'u32', C: 'u32', vocab: 'u32' } as const;
const attentionParams = { B: 'u32', T: 'u32', C: 'u32', nHead: 'u32', scale: 'f32' } as const;
const partialSumParams = { n: 'u32', stride: 'u32' } as const;
const clipParams = { n: 'u32', maxNorm: 'f32' } as const;
const sgdParams = { n: 'u32', lr: 'f32', momentum: 'f32', weightDecay: 'f32' } as const;
const adamWParams = {
  n: 'u32',
  lr: 'f32',
  beta1: 'f32',
  beta2: 'f32',
  eps: 'f32',
  weightDecay: 'f32',
  correction1: 'f32',
  correction2: 'f32',
} as const;
const moeParams = {
  tokens: 'u32',
  experts: 'u32',
  topk: 'u32',
  groups: 'u32',
  capacity: 'u32',
  slotsPerExpert: 'u32',
  channels: 'u32',
  auxIndex: 'u32',
  auxWeight: 'f32',
  auxScale: 'f32',
} as const;
// shaders/moe.wgsl's bindings, one number per variable across the file.
const moeBinding = {
  logits: 1, probs: 2, choice: 3, gates: 4, slot: 5, slotToken: 6, fractions: 7, aux: 8, out: 9, x: 10,
  dx: 11, dOut: 12, y: 13, expertOut: 14, dExpertOut: 15, dy: 16, dGates: 17, dLogits: 18,
} as const;
type MoeRole = keyof typeof moeBinding;
function moeKernel<R extends MoeRole>(entry: string, roles: readonly R[]): KernelSpec<typeof moeParams, R> {
  const storage = Object.fromEntries(roles.map((r) => [r, readWrite(moeBinding[r])])) as Record<R, StorageBinding>;
  return kernel('moe', entry, moeParams, storage);
}
const matmulParams = { M: 'u32', K: 'u32', N: 'u32', accumulate: 'u32' } as const;

export type MatmulVariant = 'blocked' | 'tiled';
export type Transposes = 'nn' | 'nt' | 'tn' | 'tt';

type MatmulKernelName = `matmul_${MatmulVariant}_${Transposes}` | `matmul_blocked_${'nn' | 'nt' | 'tn'}4` | `matmul_blocked_${'nn' | 'tn'}8`;
type MatmulKernel = KernelSpec<typeof matmulParams, 'out' | 'a' | 'b'>;

function matmulKernels(): Record<MatmulKernelName, MatmulKernel> {
  const out = {} as Record<MatmulKernelName, MatmulKernel>;
  for (const variant of ['blocked', 'tiled'] as const) {
    for (const t of ['nn', 'nt', 'tn', 'tt'] as const) {
      out[`matmul_${variant}_${t}`] = kernel('matmul', `matmul_${variant}_${t}`, matmulParams, { out: readWrite(1), a: readWrite(2), b: readWrite(3) });
    }
  }
  const vec4Kernels = ['nn4', 'nt4', 'tn4', 'nn8', 'tn8'] as const;
  for (const t of vec4Kernels) {
    out[`matmul_blocked_${t}`] = kernel('matmul', `matmul_blocked_${t}`, matmulParams, {
      out: readWrite(1),
      a: readWrite(2, 'a_vec4'),
      b: readWrite(3, 'b_vec4'),
    });
  }
  return out;
}

export const KERNELS = {
  ...matmulKernels(),
  add: kernel('residual', 'add', count, { out: readWrite(1), a: readWrite(2), b: readWrite(3) }),
  add_in_place: kernel('residual', 'add_in_place', count, { out: readWrite(1), a: readWrite(2) }),
  scale: kernel('residual', 'scale', scaleParams, { x: readWrite(1) }),
  fill: kernel('fill', 'fill', fillParams, { out: readWrite(1) }),
  copy: kernel('fill', 'copy', count, { out: readWrite(1), src: readWrite(2) }),
  bias_add: kernel('bias', 'bias_add', rowsCols, { out: readWrite(1), x: readWrite(2), bias: read(3) }),
  bias_add_in_place: kernel('bias', 'bias_add_in_place', rowsCols, { out: readWrite(1), bias: read(3) }),
  bias_backward: kernel('bias', 'bias_backward', rowsCols, { dBias: readWrite(1), dOut: read(2) }),
  relu: kernel('relu', 'relu', count, { out: readWrite(1), x: readWrite(2) }),
  relu_in_place: kernel('relu', 'relu_in_place', count, { out: readWrite(1) }),
  relu_backward: kernel('relu', 'relu_backward', count, { dx: readWrite(1), x: readWrite(2), dy: readWrite(3) }),
  relu_backward_in_place: kernel('relu', 'relu_backward_in_place', count, { dx: readWrite(1), x: readWrite(2) }),
  gelu: kernel('gelu', 'gelu', count, { out: readWrite(1), x: readWrite(2) }),
  gelu_in_place: kernel('gelu', 'gelu_in_place', count, { out: readWrite(1) }),
  gelu_backward: kernel('gelu', 'gelu_backward', count, { dx: readWrite(1), x: readWrite(2), dy: readWrite(3) }),
  gelu_backward_in_place: kernel('gelu', 'gelu_backward_in_place', count, { dx: readWrite(1), x: readWrite(2) }),
  softmax_cross_entropy: kernel('softmax_cross_entropy', 'softmax_cross_entropy', softmaxCrossEntropyParams, {
    losses: readWrite(1),
    probs: readWrite(2),
    dLogits: readWrite(3),
    logits: readWrite(4),
    targets: read(5),
  }),
  layernorm_forward: kernel('layernorm', 'layernorm_forward', rowsCols, {
    out: readWrite(1),
    mean: readWrite(2),
    rstd: readWrite(3),
    x: readWrite(4),
    gamma: read(5),
    beta: read(6),
  }),
  layernorm_backward_dx: kernel('layernorm', 'layernorm_backward_dx', rowsCols, {
    dx: readWrite(1),
    mean: readWrite(2),
    rstd: readWrite(3),
    x: readWrite(4),
    gamma: read(5),
    dy: readWrite(6),
  }),
  layernorm_backward_params: kernel('layernorm_backward_params', 'layernorm_backward_params', rowsCols, {
    dGamma: readWrite(1),
    dBeta: readWrite(2),
    dy: read(3),
    x: read(4),
    mean: read(5),
    rstd: read(6),
  }),
  embedding_forward: kernel('embedding', 'embedding_forward', embeddingParams, { out: readWrite(1), tokens: read(2), wte: read(3), wpe: read(4) }),
  embedding_backward_wte: kernel('embedding', 'embedding_backward_wte', embeddingParams, { dWte: readWrite(1), tokens: read(2), dOut: read(5) }),
  embedding_backward_wpe: kernel('embedding', 'embedding_backward_wpe', embeddingParams, { dWpe: readWrite(1), dOut: read(5) }),
  attention_forward: kernel('attention', 'attention_forward', attentionParams, { out: readWrite(1), att: readWrite(2), qkv: readWrite(3) }),
  attention_backward_scores: kernel('attention_backward_scores', 'attention_backward_scores', attentionParams, {
    dScores: readWrite(1),
    dOut: read(2),
    qkv: read(3),
    att: read(4),
  }),
  attention_backward_qkv: kernel('attention', 'attention_backward_qkv', attentionParams, {
    dQkv: readWrite(1),
    att: readWrite(2),
    qkv: readWrite(3),
    dOut: readWrite(4),
    dScores: read(5),
  }),
  moe_route_tokens: moeKernel('moe_route_tokens', ['logits', 'probs', 'choice', 'gates']),
  moe_route_slots: moeKernel('moe_route_slots', ['choice', 'slot', 'slotToken', 'fractions']),
  moe_route_aux: moeKernel('moe_route_aux', ['probs', 'fractions', 'aux']),
  moe_dispatch: moeKernel('moe_dispatch', ['out', 'x', 'slotToken']),
  moe_dispatch_backward: moeKernel('moe_dispatch_backward', ['dx', 'dOut', 'slot']),
  moe_combine: moeKernel('moe_combine', ['y', 'expertOut', 'slot', 'gates']),
  moe_combine_backward_rows: moeKernel('moe_combine_backward_rows', ['dExpertOut', 'dy', 'slotToken', 'gates']),
  moe_combine_backward_gates: moeKernel('moe_combine_backward_gates', ['dGates', 'dy', 'expertOut', 'slot']),
  moe_route_backward: moeKernel('moe_route_backward', ['dLogits', 'dGates', 'probs', 'choice', 'fractions']),
  sum_squares: kernel('reduce', 'sum_squares', count, { total: readWrite(1), x: read(2) }),
  sum_squares_partials: kernel('reduce', 'sum_squares_partials', partialSumParams, { partials: readWrite(1), x: read(2) }),
  sum_partials: kernel('reduce', 'sum_partials', count, { total: readWrite(1), x: read(2) }),
  clip_by_norm: kernel('clip', 'clip_by_norm', clipParams, { grads: readWrite(1), sumSq: read(2) }),
  sgd: kernel('optimizer', 'sgd', sgdParams, { params: readWrite(1), grads: read(2), momentum: readWrite(3) }),
  adamw: kernel('optimizer', 'adamw', adamWParams, { params: readWrite(1), grads: read(2), m: readWrite(3), v: readWrite(4) }),
} satisfies Record<string, KernelSpec>;

export type KernelName = keyof typeof KERNELS;
/** The named uniform values a dispatch of `N` passes. */
export type UniformsOf<N extends KernelName> = UniformValues<(typeof KERNELS)[N]['uniform']>;
/** The views a dispatch of `N` binds, by role. */
export type ViewsOf<N extends KernelName, V> = Record<keyof (typeof KERNELS)[N]['storage'], V>;

export interface Kernel {
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
  /** Held only to keep the wrapper alive as long as the pipeline (see buildKernels). */
  pipelineLayout: GPUPipelineLayout;
  spec: KernelSpec;
  /** The storage roles with their bindings, in the spec's order (the order views are checked and cached in). */
  roles: [role: string, binding: StorageBinding][];
}

/**
 * Pipelines already built, per device: a second backend on the same device (tests build one per
 * matmul variant) reuses them. Compiling is slow on SwiftShader (~0.3 s per pipeline), and building
 * the same shader module twice on one Dawn device crashed the process here.
 */
const built = new WeakMap<GPUDevice, { modules: Record<ShaderFile, GPUShaderModule>; kernels: Map<KernelName, Kernel> }>();

function compileModules(device: GPUDevice): Record<ShaderFile, GPUShaderModule> {
  const modules = {} as Record<ShaderFile, GPUShaderModule>;
  for (const [file, code] of Object.entries(SHADERS) as [ShaderFile, string][]) {
    // The label puts the file name into every WGSL error message.
    modules[file] = device.createShaderModule({ label: `shaders/${file}.wgsl`, code });
  }
  return modules;
}

function buildKernel(device: GPUDevice, modules: Record<ShaderFile, GPUShaderModule>, name: KernelName): Kernel {
  const spec: KernelSpec = KERNELS[name];
  const roles = Object.entries<StorageBinding>(spec.storage);
  const layout = device.createBindGroupLayout({
    label: name,
    entries: [
      { binding: 0, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'uniform' } },
      ...roles.map(([, { binding, access }]) => ({
        binding,
        visibility: GPUShaderStage.COMPUTE,
        buffer: { type: access === 'read' ? ('read-only-storage' as const) : ('storage' as const) },
      })),
    ],
  });
  const pipelineLayout = device.createPipelineLayout({ bindGroupLayouts: [layout] });
  const pipeline = device.createComputePipeline({
    label: name,
    layout: pipelineLayout,
    compute: { module: modules[spec.file], entryPoint: spec.entry },
  });
  return { pipeline, layout, pipelineLayout, spec, roles };
}

/** Builds (or reuses) the pipelines of `names` on `device`. */
export async function buildKernels<N extends KernelName>(device: GPUDevice, names: readonly N[]): Promise<Record<N, Kernel>> {
  let cache = built.get(device);
  if (!cache) built.set(device, (cache = { modules: compileModules(device), kernels: new Map() }));
  const modules = cache.modules;
  const kernels = cache.kernels;
  // Synchronous creation, one error scope for all: createComputePipelineAsync and
  // getCompilationInfo crashed Dawn for Node on SwiftShader here (a futex error, most runs).
  device.pushErrorScope('validation');
  const entries = names.map((name) => {
    let kernel = kernels.get(name);
    if (!kernel) kernels.set(name, (kernel = buildKernel(device, modules, name)));
    return [name, kernel] as const;
  });
  const error = await device.popErrorScope();
  if (error) throw new Error(`building WGSL kernels failed: ${error.message}`);
  return Object.fromEntries(entries) as Record<N, Kernel>;
}

/** Every kernel a backend needs: all but the matmul variants it does not use. */
export function kernelsFor(variant: MatmulVariant): KernelName[] {
  return (Object.keys(KERNELS) as KernelName[]).filter((name) => !name.startsWith('matmul_') || name.startsWith(`matmul_${variant}_`));
}
