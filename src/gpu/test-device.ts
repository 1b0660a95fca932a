// TESTS ONLY: the WebGPU device of the GPU kernel tests. They run in the real target, headless Chromium
// (vitest browser mode, vitest.config.ts; SwiftShader when there is no GPU), one device per test file:
// creating devices and pipelines is slow on SwiftShader.
import { type DeviceProblem, type GpuContext, NoAdapterError, acquireDevice } from './device';

let shared: Promise<GpuContext> | undefined;

/** Every uncaptured error / loss seen by the shared device: tests assert it stays empty. */
export const deviceProblems: DeviceProblem[] = [];

export function testDevice(): Promise<GpuContext> {
  shared ??= (async () => {
    try {
      return await acquireDevice(navigator.gpu, {
        onProblem: (p) => {
          deviceProblems.push(p);
          console.error('[webgpu test device]', p);
        },
      });
    } catch (e) {
      if (e instanceof NoAdapterError) {
        throw new NoAdapterError('The GPU tests run in Chromium with --enable-unsafe-webgpu (see scripts/chromium.ts).');
      }
      throw e;
    }
  })();
  return shared;
}
