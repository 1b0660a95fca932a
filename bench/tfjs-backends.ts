// TensorFlow.js's backends that bench:gpu compares with: WebGPU and WebGL on the page's adapter, WASM
// (XNNPACK) on the CPU, which does not use the adapter and is reported apart as the CPU reference. Shared by the page (bench/gpu-page.ts) and its Node driver (bench/gpu.ts), which
// must not import the page module itself (it runs on import).
export const TFJS_BACKENDS = ['webgpu', 'webgl', 'wasm'] as const;
export type TfjsBackend = (typeof TFJS_BACKENDS)[number];
/** The backends that run on the page's adapter: the goal compares ours with the fastest of these. */
export const ADAPTER_BACKENDS: readonly TfjsBackend[] = ['webgpu', 'webgl'];
/** The CPU reference, printed beside the adapter's figures but not counted as one of them. */
export const CPU_REFERENCE_BACKEND: TfjsBackend = 'wasm';
