// Picks the tab's compute backend: WebGPU when the browser has it, else the CPU reference, marked as
// such with the reason, so that a browser without WebGPU still trains (slowly) and says why.
import type { Backend } from '../engine/backend';
import { CpuBackend } from '../engine/cpu-backend';
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
  if (choice === 'cpu') return { backend: new CpuBackend(), fallbackReason: null };
  try {
    return { backend: await WebGpuBackend.create(gpu, { onProblem }), fallbackReason: null };
  } catch (error) {
    if (choice === 'webgpu') throw error;
    const reason = error instanceof Error ? error.message : String(error);
    return { backend: new CpuBackend(), fallbackReason: reason };
  }
}
