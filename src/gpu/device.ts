// Acquire a WebGPU device from a `GPU` object (navigator.gpu in a browser, the `webgpu` package's
// create([]) in Node), with errors that say what is missing, and device loss / uncaptured errors
// reported through a callback: a training loop must never freeze silently on a lost device.

export class NoWebGpuError extends Error {
  constructor() {
    super(
      'WebGPU is not available here (no navigator.gpu). Use a browser with WebGPU (Chrome/Edge 113+, ' +
        'or Chromium with --enable-unsafe-webgpu) served from https:// or http://localhost.',
    );
    this.name = 'NoWebGpuError';
  }
}

export class NoAdapterError extends Error {
  constructor(detail = '') {
    super(
      'WebGPU exists but no adapter was granted (requestAdapter() returned null). ' +
        'Headless Chromium needs --enable-unsafe-webgpu to use SwiftShader.' +
        (detail ? ` ${detail}` : ''),
    );
    this.name = 'NoAdapterError';
  }
}

/** Why the device stopped being usable, for the dashboard and the trainer. */
export type DeviceProblem =
  | { kind: 'lost'; reason: string; message: string }
  | { kind: 'error'; errorType: string; message: string };

export interface AdapterDescription {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
}

export interface GpuContext {
  device: GPUDevice;
  adapter: AdapterDescription;
}

export interface AcquireOptions {
  powerPreference?: GPUPowerPreference;
  /** Limits above the WebGPU defaults, e.g. { maxStorageBufferBindingSize: 1 << 30 } for big models. */
  requiredLimits?: Record<string, number>;
  /** Called on device loss and on every uncaptured validation / out-of-memory / internal error. */
  onProblem?: (problem: DeviceProblem) => void;
}

export function describeAdapter(info: GPUAdapterInfo | undefined): AdapterDescription {
  return {
    vendor: info?.vendor ?? '',
    architecture: info?.architecture ?? '',
    device: info?.device ?? '',
    description: info?.description ?? '',
  };
}

/** True for SwiftShader, Google's CPU implementation of Vulkan that Chromium falls back to. */
export function isSwiftShader(a: AdapterDescription): boolean {
  return /swiftshader/i.test(`${a.architecture} ${a.description} ${a.device}`);
}

export async function acquireDevice(gpu: GPU | undefined | null, opts: AcquireOptions = {}): Promise<GpuContext> {
  if (!gpu) throw new NoWebGpuError();
  const adapter = await gpu.requestAdapter(opts.powerPreference ? { powerPreference: opts.powerPreference } : undefined);
  if (!adapter) throw new NoAdapterError();
  // Default limits (128 MiB per binding, 8 storage buffers per kernel) fit our models and kernels.
  // Raising them to the adapter's maxima made Dawn for Node on SwiftShader crash at random
  // (a futex error) once ~30 pipelines were in use: only what the caller asks for is requested.
  const device = await adapter.requestDevice(opts.requiredLimits ? { requiredLimits: opts.requiredLimits } : undefined);
  const report = opts.onProblem ?? ((p: DeviceProblem) => console.error('[webgpu]', p));
  void device.lost.then((info) => {
    // 'destroyed' is our own doing (backend.destroy()); anything else the user must hear about.
    if (info.reason !== 'destroyed') report({ kind: 'lost', reason: String(info.reason), message: info.message });
  });
  device.addEventListener('uncapturederror', (event) => {
    const error = (event as GPUUncapturedErrorEvent).error;
    report({ kind: 'error', errorType: error.constructor?.name ?? 'GPUError', message: error.message });
  });
  return { device, adapter: describeAdapter(adapter.info) };
}
