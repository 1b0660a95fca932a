// NODE-ONLY (tests and scripts): a WebGPU device in Node through Dawn (the `webgpu` package), on the
// SwiftShader that Chromium ships (vitest.config.ts points the loader at it). One device per test
// file: creating devices is slow on SwiftShader.
import { create, globals } from 'webgpu';
import { type DeviceProblem, type GpuContext, NoAdapterError, acquireDevice } from './device';

let shared: Promise<GpuContext> | undefined;

/** Every uncaptured error / loss seen by the shared device: tests assert it stays empty. */
export const deviceProblems: DeviceProblem[] = [];

export function testDevice(): Promise<GpuContext> {
  shared ??= (async () => {
    // Dawn's GPUBufferUsage, GPUShaderStage, ... globals, as a browser has them.
    Object.assign(globalThis, globals);
    try {
      return await acquireDevice(create([]), {
        onProblem: (p) => {
          deviceProblems.push(p);
          console.error('[webgpu test device]', p);
        },
      });
    } catch (e) {
      if (e instanceof NoAdapterError) {
        throw new NoAdapterError(
          'In Node, Dawn needs a Vulkan driver: install Chromium for its SwiftShader ' +
            '(`apt-get install -y chromium`, or set CHROMIUM_PATH) and run through vitest, whose config sets ' +
            'LD_LIBRARY_PATH and VK_ICD_FILENAMES (see scripts/chromium.ts).',
        );
      }
      throw e;
    }
  })();
  return shared;
}
