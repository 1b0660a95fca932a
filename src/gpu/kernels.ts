// The table of compute kernels: which WGSL file, which entry point, which storage bindings, which
// pipeline constants. Every pipeline is built once, when a backend is created (never in a step loop).
import attentionWgsl from '../../shaders/attention.wgsl?raw';
import biasWgsl from '../../shaders/bias.wgsl?raw';
import embeddingWgsl from '../../shaders/embedding.wgsl?raw';
import fillWgsl from '../../shaders/fill.wgsl?raw';
import geluWgsl from '../../shaders/gelu.wgsl?raw';
import layernormWgsl from '../../shaders/layernorm.wgsl?raw';
import matmulWgsl from '../../shaders/matmul.wgsl?raw';
import optimizerWgsl from '../../shaders/optimizer.wgsl?raw';
import reduceWgsl from '../../shaders/reduce.wgsl?raw';
import reluWgsl from '../../shaders/relu.wgsl?raw';
import residualWgsl from '../../shaders/residual.wgsl?raw';
import softmaxCrossEntropyWgsl from '../../shaders/softmax_cross_entropy.wgsl?raw';

/** Every WGSL file, by name (shaders/<name>.wgsl). */
export const SHADERS = {
  attention: attentionWgsl,
  bias: biasWgsl,
  embedding: embeddingWgsl,
  fill: fillWgsl,
  gelu: geluWgsl,
  layernorm: layernormWgsl,
  matmul: matmulWgsl,
  optimizer: optimizerWgsl,
  reduce: reduceWgsl,
  relu: reluWgsl,
  residual: residualWgsl,
  softmax_cross_entropy: softmaxCrossEntropyWgsl,
};
type ShaderFile = keyof typeof SHADERS;

export interface KernelSpec {
  file: ShaderFile;
  entry: string;
  /** Binding numbers of the storage buffers, in the order the op passes its views (binding 0 is the uniform). */
  storage: number[];
  constants?: Record<string, number>;
}

const seq = (n: number) => Array.from({ length: n }, (_, i) => i + 1);
const k = (file: ShaderFile, entry: string, storage: number | number[], constants?: Record<string, number>): KernelSpec => ({
  file,
  entry,
  storage: typeof storage === 'number' ? seq(storage) : storage,
  constants,
});

export type MatmulVariant = 'blocked' | 'tiled';
export type Transposes = 'nn' | 'nt' | 'tn' | 'tt';

type MatmulKernelName = `matmul_${MatmulVariant}_${Transposes}` | 'matmul_blocked_nn4' | 'matmul_blocked_nt4' | 'matmul_blocked_tn4';

function matmulKernels(): Record<MatmulKernelName, KernelSpec> {
  const out = {} as Record<MatmulKernelName, KernelSpec>;
  for (const variant of ['blocked', 'tiled'] as const) {
    for (const t of ['nn', 'nt', 'tn', 'tt'] as const) {
      out[`matmul_${variant}_${t}`] = k('matmul', `matmul_${variant}_${t}`, 3);
    }
  }
  for (const t of ['nn', 'nt', 'tn'] as const) out[`matmul_blocked_${t}4`] = k('matmul', `matmul_blocked_${t}4`, 3);
  return out;
}

export const KERNELS = {
  ...matmulKernels(),
  add: k('residual', 'add', 3),
  add_in_place: k('residual', 'add_in_place', 2),
  scale: k('residual', 'scale', 1),
  fill: k('fill', 'fill', 1),
  copy: k('fill', 'copy', 2),
  bias_add: k('bias', 'bias_add', 3),
  bias_add_in_place: k('bias', 'bias_add_in_place', [1, 3]),
  bias_backward: k('bias', 'bias_backward', 2),
  relu: k('relu', 'relu', 2),
  relu_in_place: k('relu', 'relu_in_place', 1),
  relu_backward: k('relu', 'relu_backward', 3),
  relu_backward_in_place: k('relu', 'relu_backward_in_place', 2),
  gelu: k('gelu', 'gelu', 2),
  gelu_in_place: k('gelu', 'gelu_in_place', 1),
  gelu_backward: k('gelu', 'gelu_backward', 3),
  gelu_backward_in_place: k('gelu', 'gelu_backward_in_place', 2),
  softmax_cross_entropy: k('softmax_cross_entropy', 'softmax_cross_entropy', 5),
  layernorm_forward: k('layernorm', 'layernorm_forward', 6),
  layernorm_backward_dx: k('layernorm', 'layernorm_backward_dx', 6),
  layernorm_backward_params: k('layernorm', 'layernorm_backward_params', 6),
  embedding_forward: k('embedding', 'embedding_forward', 4),
  embedding_backward_wte: k('embedding', 'embedding_backward_wte', 3),
  embedding_backward_wpe: k('embedding', 'embedding_backward_wpe', [1, 3]),
  attention_forward: k('attention', 'attention_forward', 3),
  attention_backward_scores: k('attention', 'attention_backward_scores', 4),
  attention_backward_qkv: k('attention', 'attention_backward_qkv', 5),
  sum_squares: k('reduce', 'sum_squares', 2),
  sum_squares_partials: k('reduce', 'sum_squares_partials', 2),
  sum_partials: k('reduce', 'sum_partials', 2),
  clip_by_norm: k('optimizer', 'clip_by_norm', 2),
  sgd: k('optimizer', 'sgd', 3),
  adamw: k('optimizer', 'adamw', 4),
} satisfies Record<string, KernelSpec>;

export type KernelName = keyof typeof KERNELS;

export interface Kernel {
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
  /** Held only to keep the wrapper alive as long as the pipeline (see buildKernels). */
  pipelineLayout: GPUPipelineLayout;
  storage: number[];
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
  const layout = device.createBindGroupLayout({
    label: name,
    entries: [
      { binding: 0, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'uniform' } },
      ...spec.storage.map((binding) => ({ binding, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'storage' as const } })),
    ],
  });
  const pipelineLayout = device.createPipelineLayout({ bindGroupLayouts: [layout] });
  const pipeline = device.createComputePipeline({
    label: name,
    layout: pipelineLayout,
    compute: { module: modules[spec.file], entryPoint: spec.entry, constants: spec.constants },
  });
  return { pipeline, layout, pipelineLayout, storage: spec.storage };
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
