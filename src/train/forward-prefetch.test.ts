import { describe, expect, it } from 'vitest';
import { CpuBackend } from '../engine/cpu-backend';
import { Rng } from '../data/random';
import type { FlatRange } from '../model/layout';
import { Mlp } from '../model/mlp';
import { ForwardPrefetch } from './forward-prefetch';

function started() {
  const backend = new CpuBackend();
  const model = new Mlp(backend, { sizes: [64, 8, 3] }, 4);
  model.init(1);
  const rng = new Rng(3);
  const batch = { inputs: Float32Array.from({ length: 4 * 64 }, () => rng.normal()), targets: Uint32Array.from([0, 1, 2, 0]), rows: 4 };
  return { backend, model, forward: model.startForward(batch) };
}

describe('ForwardPrefetch', () => {
  it('records blocks in their fixed order, each only once every parameter it reads is updated', () => {
    const { backend, forward } = started();
    const prefetch = new ForwardPrefetch(backend, 1, forward);
    const [b0, b1, b2] = forward.blocks;
    // The second block's parameters are updated first: the walk waits for the first.
    prefetch.advance([b1]);
    expect(forward.recorded).toBe(0);
    // Half of the first block is not enough.
    prefetch.advance([b1, { offset: b0.offset, length: b0.length / 2 }]);
    expect(forward.recorded).toBe(0);
    // Pieces that together cover the first two blocks (in any order) release both, and no more.
    const updated: FlatRange[] = [b1, { offset: b0.offset + b0.length / 2, length: b0.length / 2 }, { offset: b0.offset, length: b0.length / 2 }];
    prefetch.advance(updated);
    expect(forward.recorded).toBe(2);
    prefetch.advance([...updated, { offset: b2.offset, length: b2.length - 1 }]);
    expect(forward.recorded).toBe(2);
    prefetch.advance([...updated, b2]);
    expect(forward.recorded).toBe(3);
  });

  it('stops recording once another forward has overwritten the activations', async () => {
    const { backend, model, forward } = started();
    const prefetch = new ForwardPrefetch(backend, 1, forward);
    prefetch.advance([forward.blocks[0]]);
    expect(forward.recorded).toBe(1);
    model.forward({ inputs: new Float32Array(4 * 64), targets: new Uint32Array(4), rows: 4 }, 0);
    prefetch.advance(forward.blocks);
    expect(forward.recorded).toBe(1);
    expect(forward.current).toBe(false);
  });

  it('reports the time its blocks kept the device busy, clipped to the step asking, counting a running one until then', async () => {
    const { forward } = started();
    // A device whose work finishes when the test says so.
    let finish: () => void = () => undefined;
    const device = new (class extends CpuBackend {
      override flush(): Promise<void> {
        return new Promise((resolve) => (finish = resolve));
      }
    })();
    const prefetch = new ForwardPrefetch(device, 1, forward);
    const before = performance.now();
    prefetch.advance(forward.blocks.slice(0, 2));
    expect(forward.recorded).toBe(2);
    const [[start, running]] = prefetch.busyWithin(0, before + 1e6);
    expect(start).toBeGreaterThanOrEqual(before);
    expect(running).toBe(before + 1e6); // not finished yet: busy until the end of the asking step
    await new Promise((resolve) => setTimeout(resolve, 5));
    finish();
    await Promise.resolve();
    const [[, end]] = prefetch.busyWithin(0, before + 1e6);
    expect(end).toBeGreaterThan(start + 4);
    // A step that began after the blocks finished saw none of it; one that ended mid-way sees its part.
    expect(prefetch.busyWithin(end + 1, end + 100)).toEqual([]);
    expect(prefetch.busyWithin(0, start + 2)).toEqual([[start, start + 2]]);
    expect(prefetch.busyWithin(start + 1, end + 100)).toEqual([[start + 1, end]]);
  });
});
