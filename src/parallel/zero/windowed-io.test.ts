import { describe, expect, it } from 'vitest';
import { type View, viewOf } from '../../engine/backend';
import { CpuBackend } from '../../engine/cpu-backend';
import { addWindowed, readWindowed } from './windowed-io';

/** A CPU backend that remembers the length of every read (what a WebGPU staging buffer would hold). */
class ReadLog extends CpuBackend {
  readonly lengths: number[] = [];
  override read(src: View): Promise<Float32Array> {
    this.lengths.push(src.length);
    return super.read(src);
  }
}

describe('windowed device transfers', () => {
  it('reads any range in windows of one size (the last moved back inside the buffer)', async () => {
    const backend = new ReadLog();
    const buf = backend.alloc(1000, 't', 'workspace');
    const values = Float32Array.from({ length: 1000 }, (_, i) => i * 0.5);
    backend.write(viewOf(buf), values);
    for (const [offset, length] of [[0, 1000], [3, 250], [990, 10], [120, 64], [0, 1]]) {
      const got = await readWindowed(backend, viewOf(buf, offset, length), 64);
      expect(Array.from(got)).toEqual(Array.from(values.subarray(offset, offset + length)));
    }
    expect(new Set(backend.lengths)).toEqual(new Set([64]));
    // A buffer smaller than a window is read whole.
    backend.lengths.length = 0;
    const small = backend.alloc(10, 's', 'workspace');
    backend.write(viewOf(small), values.subarray(0, 10));
    expect(Array.from(await readWindowed(backend, viewOf(small, 2, 5), 64))).toEqual([1, 1.5, 2, 2.5, 3]);
    expect(backend.lengths).toEqual([10]);
    await expect(readWindowed(backend, viewOf(small), 0)).rejects.toThrow(/positive integer/);
  });

  it('adds host values into a device range through a small staging buffer', async () => {
    const backend = new CpuBackend();
    const dst = backend.alloc(300, 'dst', 'grads');
    backend.fill(viewOf(dst), 1);
    const staging = backend.alloc(64, 'staging', 'workspace');
    const data = Float32Array.from({ length: 200 }, (_, i) => i);
    addWindowed(backend, viewOf(dst, 50, 200), data, viewOf(staging));
    const got = await backend.read(viewOf(dst));
    expect(got[49]).toBe(1);
    expect(got[50]).toBe(1);
    expect(got[249]).toBe(200);
    expect(got[250]).toBe(1);
    expect(Array.from(got.subarray(50, 250))).toEqual(Array.from(data, (v) => v + 1));
    expect(() => addWindowed(backend, viewOf(dst, 0, 10), data, viewOf(staging))).toThrow(/200 values for a view of 10/);
  });
});
