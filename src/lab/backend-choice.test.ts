// Which backend a tab gets: the WebAssembly SIMD CPU backend for backend=cpu and where WebGPU is
// missing, the CPU reference where WebAssembly SIMD is missing too.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CpuBackend } from '../engine/cpu-backend';
import { WASM_ADAPTER, WasmCpuBackend } from '../engine/wasm-backend';
import { chooseBackend } from './backend-choice';
import { buildWasm } from '../../scripts/build-wasm';

// The kernels are a build product (npm run build:wasm); build them here too when missing or stale.
await buildWasm();

const noProblems = () => {};

describe('chooseBackend', () => {
  afterEach(() => vi.restoreAllMocks());

  it('backend=cpu gets the WebAssembly SIMD backend', async () => {
    const { backend, fallbackReason } = await chooseBackend('cpu', undefined, noProblems);
    expect(backend).toBeInstanceOf(WasmCpuBackend);
    expect(backend.info).toEqual({ kind: 'cpu', adapter: WASM_ADAPTER });
    expect(fallbackReason).toBeNull();
  });

  it('auto without WebGPU falls back to the WebAssembly SIMD backend and says why', async () => {
    const { backend, fallbackReason } = await chooseBackend('auto', undefined, noProblems);
    expect(backend).toBeInstanceOf(WasmCpuBackend);
    expect(fallbackReason).toMatch(/./);
  });

  it('without WebAssembly SIMD the CPU reference runs, with a warning', async () => {
    vi.spyOn(WebAssembly, 'validate').mockReturnValue(false);
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const { backend } = await chooseBackend('cpu', undefined, noProblems);
    expect(backend).toBeInstanceOf(CpuBackend);
    expect(backend).not.toBeInstanceOf(WasmCpuBackend);
    expect(backend.info.adapter).toMatch(/reference/);
    expect(warn).toHaveBeenCalledWith(expect.stringMatching(/no WebAssembly SIMD/));
  });

  it('backend=webgpu without WebGPU is an error, not a silent CPU run', async () => {
    await expect(chooseBackend('webgpu', undefined, noProblems)).rejects.toThrow();
  });
});
