// Picks the tab's compute backend: WebGPU when the browser has it, else the CPU backend, marked as such
// with the reason, so that a browser without WebGPU still trains and says why. The CPU backend is the
// WebAssembly SIMD one where the browser validates WASM SIMD, else the reference (its adapter string
// says which runs).
import type { Backend } from '../engine/backend';
import { CpuBackend } from '../engine/cpu-backend';
import { WasmCpuBackend } from '../engine/wasm-backend';
import type { DeviceProblem } from '../gpu/device';
import { WebGpuBackend } from '../gpu/webgpu-backend';
import type { BackendChoice } from './config';

export interface ChosenBackend {
  backend: Backend;
  /** Why the CPU backend runs instead of WebGPU (null when WebGPU runs, or the CPU was asked for). */
  fallbackReason: string | null;
}

export async function chooseBackend(
  choice: BackendChoice,
  gpu: GPU | undefined,
  onProblem: (problem: DeviceProblem) => void,
): Promise<ChosenBackend> {
  if (choice === 'cpu') return { backend: await cpuBackend(), fallbackReason: null };
  try {
    return { backend: await WebGpuBackend.create(gpu, { onProblem }), fallbackReason: null };
  } catch (error) {
    if (choice === 'webgpu') throw error;
    const reason = error instanceof Error ? error.message : String(error);
    return { backend: await cpuBackend(), fallbackReason: reason };
  }
}

/** The fast CPU backend, or the reference where WebAssembly SIMD (or its kernels) cannot load. */
async function cpuBackend(): Promise<Backend> {
  try {
    return await WasmCpuBackend.create();
  } catch (error) {
    console.warn(`fast CPU backend unavailable, using the CPU reference: ${error instanceof Error ? error.message : error}`);
    return new CpuBackend();
  }
}

/**
 * The run loops' start (session.ts, partitioned-session.ts): the config's backend, a device problem
 * turned into the run's failure, and the fallback to the CPU said in the log.
 */
export async function openRunBackend(
  choice: BackendChoice,
  gpu: GPU | undefined,
  fail: (error: Error) => void,
  warn: (message: string) => void,
): Promise<Backend> {
  const { backend, fallbackReason } = await chooseBackend(choice, gpu, (problem) =>
    fail(new Error(problem.kind === 'lost' ? `GPU device lost (${problem.reason}): ${problem.message}` : `GPU error: ${problem.message}`)),
  );
  if (fallbackReason) warn(`no WebGPU, training on the CPU backend (${backend.info.adapter}): ${fallbackReason}`);
  return backend;
}
