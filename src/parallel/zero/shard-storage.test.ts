import { describe, expect, it } from 'vitest';
import { viewOf } from '../../engine/backend';
import { CpuBackend } from '../../engine/cpu-backend';
import { mlpLayout } from '../../model/mlp';
import { ZeroStorage } from './shard-storage';
import { zeroPartition } from './zero-hooks';

const layout = mlpLayout({ sizes: [8, 16, 4] });

describe('ZeRO storage', () => {
  it('stage 3 holds its shard only and lends a layer slot while the layer is resident', async () => {
    const backend = new CpuBackend();
    const shard = zeroPartition(layout, 2).shards[1];
    const storage = new ZeroStorage(backend, layout, 3, shard, 't');
    expect(storage.params.length).toBe(shard.length);
    expect(storage.grads.length).toBe(shard.length);
    const full = Float32Array.from({ length: layout.totalLength }, (_, i) => i);
    storage.writeParams(full);
    expect(Array.from(await backend.read(viewOf(storage.params)))).toEqual(Array.from(full.subarray(shard.offset, shard.offset + shard.length)));
    expect(() => storage.param('fc1.w')).toThrow(/not gathered/);
    const before = backend.bufferCount();
    storage.paramHolding.acquire('fc1');
    expect(storage.param('fc1.b').length).toBe(4);
    storage.paramHolding.release('fc1');
    storage.paramHolding.acquire('fc0');
    storage.paramHolding.release('fc0');
    // A layer's gradients borrow the slot its weights were gathered into, once those are released.
    const slot = storage.gradHolding.acquire('fc0');
    expect(storage.grad('fc0.w').buf).toBe(slot);
    expect(() => storage.param('fc0.w')).toThrow(/not gathered/);
    storage.gradHolding.release('fc0');
    // One slot, reused: nothing allocated per layer once the pool holds what a pass needs.
    expect(backend.bufferCount()).toBe(before + 1);
    expect(storage.slots?.size).toBe(1);
    // Weights and gradients resident at once (the GPT's blocks) take two.
    storage.paramHolding.acquire('fc1');
    storage.gradHolding.acquire('fc1');
    expect(storage.slots?.size).toBe(2);
    storage.paramHolding.release('fc1');
    storage.gradHolding.release('fc1');
    storage.dispose();
    expect(backend.bufferCount()).toBe(0);
  });

  it('stage 1 keeps full buffers; a rank that would own nothing is refused', () => {
    const backend = new CpuBackend();
    const storage = new ZeroStorage(backend, layout, 1, zeroPartition(layout, 2).shards[0], 't');
    expect(storage.params.length).toBe(layout.totalLength);
    expect(storage.param('fc0.w').length).toBe(8 * 16);
    expect(() => new ZeroStorage(backend, layout, 2, { offset: layout.totalLength, length: 0 }, 't')).toThrow(/owns no parameters/);
  });
});
