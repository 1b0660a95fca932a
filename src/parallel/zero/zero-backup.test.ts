import { describe, expect, it } from 'vitest';
import { decodeSlice, encodeSlice, joinSlices, planAssembly, subSlice, ZeroBackups, type ZeroSlice } from './zero-backup';

const SHAPE = { total: 10, buffers: ['adam.m', 'adam.v'] };

function slice(step: number, offset: number, length: number, seed = step): ZeroSlice {
  const fill = (k: number) => Float32Array.from({ length }, (_, i) => seed * 100 + k * 10 + offset + i + 0.25);
  return { step, range: { offset, length }, total: SHAPE.total, params: fill(0), state: new Map([['adam.m', fill(1)], ['adam.v', fill(2)]]) };
}

describe('slice codec', () => {
  it('round-trips bit for bit', () => {
    const s = slice(7, 3, 4);
    s.params[0] = -0; // sign of zero survives
    const back = decodeSlice(encodeSlice(s), SHAPE);
    expect(back.step).toBe(7);
    expect(back.range).toEqual({ offset: 3, length: 4 });
    expect(new Uint8Array(back.params.buffer)).toEqual(new Uint8Array(s.params.buffer));
    for (const name of SHAPE.buffers) expect(Array.from(back.state.get(name)!)).toEqual(Array.from(s.state.get(name)!));
  });

  it('refuses corrupt, truncated, foreign and non-finite slices with a reason', () => {
    const bytes = encodeSlice(slice(1, 0, 5));
    const flipped = bytes.slice();
    flipped[bytes.length - 10] ^= 1;
    expect(() => decodeSlice(flipped, SHAPE)).toThrow(/CRC-32/);
    expect(() => decodeSlice(bytes.subarray(0, 40), SHAPE)).toThrow(/refused/);
    expect(() => decodeSlice(new Uint8Array(64), SHAPE)).toThrow(/magic/);
    expect(() => decodeSlice(bytes, { ...SHAPE, total: 12 })).toThrow(/12/);
    expect(() => decodeSlice(bytes, { total: 10, buffers: ['momentum'] })).toThrow(/optimizer buffers/);
    const nan = slice(1, 0, 5);
    nan.state.get('adam.v')![2] = Number.NaN;
    expect(() => decodeSlice(encodeSlice(nan), SHAPE)).toThrow(/non-finite adam.v value at element 2/);
    const outside = slice(1, 8, 5);
    outside.total = 10;
    expect(() => decodeSlice(encodeSlice(outside), SHAPE)).toThrow(/outside/);
  });
});

describe('planAssembly', () => {
  it('takes the newest step the pooled slices cover, with the fewest pieces', () => {
    // Three ranks' shards [0,3) [3,7) [7,10); rank 1 died: rank 2 holds its copy of step 5 only.
    const inventories = [
      [{ step: 5, offset: 0, length: 3 }, { step: 6, offset: 0, length: 3 }, { step: 6, offset: 7, length: 3 }],
      [{ step: 5, offset: 7, length: 3 }, { step: 6, offset: 7, length: 3 }, { step: 5, offset: 3, length: 4 }],
    ];
    const plan = planAssembly(inventories, 10)!;
    expect(plan.step).toBe(5);
    expect(plan.picks).toEqual([
      { member: 0, index: 0, offset: 0, length: 3 },
      { member: 1, index: 2, offset: 3, length: 4 },
      { member: 1, index: 0, offset: 7, length: 3 },
    ]);
  });

  it('uses parts of overlapping slices of different partitions, and a full copy in one piece', () => {
    const overlapping = planAssembly([[{ step: 2, offset: 0, length: 6 }], [{ step: 2, offset: 4, length: 6 }]], 10)!;
    expect(overlapping.picks).toEqual([
      { member: 0, index: 0, offset: 0, length: 6 },
      { member: 1, index: 0, offset: 6, length: 4 },
    ]);
    const full = planAssembly([[{ step: 2, offset: 0, length: 3 }], [{ step: 2, offset: 0, length: 10 }]], 10)!;
    expect(full.picks).toEqual([{ member: 1, index: 0, offset: 0, length: 10 }]);
  });

  it('is null when no step is covered', () => {
    expect(planAssembly([[{ step: 2, offset: 0, length: 3 }], [{ step: 2, offset: 7, length: 3 }]], 10)).toBeNull();
    expect(planAssembly([[], []], 10)).toBeNull();
  });
});

describe('ZeroBackups', () => {
  it('keeps the two newest steps of its own snapshots, and what it holds of those steps', () => {
    const store = new ZeroBackups();
    for (const step of [1, 2, 3]) {
      store.add(slice(step, 0, 5), true);
      store.add(slice(step, 5, 5), false);
    }
    expect(store.inventory().map((s) => s.step).sort()).toEqual([2, 2, 3, 3]);
    expect(store.floats()).toBe(4 * 5 * 3);
  });

  it('after a rebuild drops the abandoned later steps and keeps the full state until two newer backups', () => {
    const store = new ZeroBackups();
    store.add(slice(4, 0, 5), true);
    store.add(slice(5, 0, 5), true);
    store.adopt(joinSlices([slice(4, 0, 5), slice(4, 5, 5)], 10, SHAPE.buffers));
    expect(store.inventory()).toEqual([{ step: 4, offset: 0, length: 5 }, { step: 4, offset: 0, length: 10 }]);
    store.add(slice(5, 0, 3), true);
    expect(store.inventory().some((s) => s.length === 10)).toBe(true);
    store.add(slice(6, 0, 3), true);
    expect(store.inventory().some((s) => s.length === 10)).toBe(false);
  });
});

describe('subSlice and joinSlices', () => {
  it('cut and join back to the same floats; gaps and mixed steps are refused', () => {
    const whole = joinSlices([slice(3, 0, 4), slice(3, 4, 6)], 10, SHAPE.buffers);
    const parts = [subSlice(whole, 0, 2), subSlice(whole, 2, 8)];
    expect(Array.from(joinSlices(parts, 10, SHAPE.buffers).state.get('adam.v')!)).toEqual(Array.from(whole.state.get('adam.v')!));
    expect(() => joinSlices([slice(3, 0, 4), slice(3, 5, 5)], 10, SHAPE.buffers)).toThrow(/uncovered/);
    expect(() => joinSlices([slice(3, 0, 4), slice(2, 4, 6)], 10, SHAPE.buffers)).toThrow(/steps/);
    expect(() => subSlice(whole, 8, 4)).toThrow(RangeError);
  });
});
