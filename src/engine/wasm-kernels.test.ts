// Loading the WebAssembly kernels: a build older than the code that calls it is refused at load with
// the kernels it lacks and the command that rebuilds it, not at its first call.
import { describe, expect, it } from 'vitest';
import { kernelExportsOf } from './wasm-kernels';

const fakeInstance = (exports: Record<string, unknown>) => ({ exports }) as unknown as WebAssembly.Instance;

describe('kernelExportsOf', () => {
  it('refuses a build that lacks kernels, naming each and the rebuild command', () => {
    const stale = fakeInstance({ memory: {}, heapBase: () => 0, gemmPacked: () => undefined });
    expect(() => kernelExportsOf(stale, 'kernels.wasm')).toThrow(/^kernels\.wasm is older than the code that calls it \(no paddedRows, .*embeddingBackward\): rebuild it with `npm run build:wasm`/);
  });

  it('takes a build with every kernel; refuses one whose kernel of that name is not a function', () => {
    const real = Object.fromEntries(
      ['heapBase', 'paddedRows', 'paddedCols', 'packPanels', 'gemmPacked', 'unpad', 'attention', 'attentionBackward', 'gelu', 'geluBackward', 'layerNorm',
        'layerNormBackwardRows', 'layerNormParamGrads', 'adamw', 'softmaxCrossEntropyRows', 'tanh', 'biasAdd', 'biasBackward', 'add', 'embedding', 'embeddingBackward']
        .map((name) => [name, () => 0]),
    );
    expect(kernelExportsOf(fakeInstance(real), 'k')).toBe(real);
    expect(() => kernelExportsOf(fakeInstance({ ...real, adamw: 1 }), 'k')).toThrow('(no adamw)');
  });
});
