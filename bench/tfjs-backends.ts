// TensorFlow.js's backends that bench:gpu compares with: WebGPU and WebGL on the page's adapter, WASM
// (XNNPACK) on the CPU. Shared by the page (bench/gpu-page.ts) and its Node driver (bench/gpu.ts), which
// must not import the page module itself (it runs on import).
export const TFJS_BACKENDS = ['webgpu', 'webgl', 'wasm'] as const;
export type TfjsBackend = (typeof TFJS_BACKENDS)[number];
