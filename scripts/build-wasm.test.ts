// The WASM kernels' build is deterministic and its output is current: compiling twice gives the same
// bytes, and they are the bytes that `buildWasm` left in src/engine/generated/.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildWasm, compileKernels, KERNELS_OUTPUT, THREADED_KERNELS_OUTPUT } from './build-wasm';

describe('build-wasm', () => {
  it('compiles wasm/kernels.ts to the same bytes every time, and the built file is those bytes', async () => {
    await buildWasm();
    const [first, second] = [await compileKernels(), await compileKernels()];
    expect(first.length).toBeGreaterThan(100);
    expect(Buffer.from(second).equals(Buffer.from(first))).toBe(true);
    expect(readFileSync(KERNELS_OUTPUT).equals(Buffer.from(first))).toBe(true);
    expect(WebAssembly.validate(new Uint8Array(first))).toBe(true);
  });

  it('the threaded variant is deterministic too, built, and imports one shared memory', async () => {
    await buildWasm();
    const [first, second] = [await compileKernels('threads'), await compileKernels('threads')];
    expect(Buffer.from(second).equals(Buffer.from(first))).toBe(true);
    expect(readFileSync(THREADED_KERNELS_OUTPUT).equals(Buffer.from(first))).toBe(true);
    const module = new WebAssembly.Module(new Uint8Array(first));
    expect(WebAssembly.Module.imports(module)).toEqual([{ module: 'env', name: 'memory', kind: 'memory' }]);
    // Instantiating it on an unshared memory fails: the import is declared shared.
    expect(() => new WebAssembly.Instance(module, { env: { memory: new WebAssembly.Memory({ initial: 1 }) } })).toThrow();
  });
});
