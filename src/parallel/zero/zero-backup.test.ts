import { describe, expect, it } from 'vitest';
import { decodeSlice, encodeSlice, planTransfers, subSlice, ZeroBackups, type StateWants, type ZeroSlice } from './zero-backup';

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

/** Stage 3: each rank holds parameters and optimizer state over its shard only. */
const shards = (...ranges: [number, number][]): StateWants[] => ranges.map(([offset, length]) => ({ params: { offset, length }, state: { offset, length } }));

/** A transfer as the plan lists it: `from` sends part [offset, offset + length) of its slice `index` to `to`. */
const piece = (from: number, index: number, to: number, offset: number, length: number, paramsOnly = false) => ({ from, index, to, offset, length, paramsOnly });

describe('planTransfers', () => {
  it('takes the newest step the pooled slices cover; each rank gets exactly its new shard, from itself first, then the owner, then a copy', () => {
    // Three ranks' shards [0,3) [3,7) [7,10); rank 1 died: the survivors hold steps 5 and 6, and only
    // rank 2 (old rank 2, now rank 1) holds a copy of rank 1's slice, of step 5.
    const inventories = [
      [{ step: 5, offset: 0, length: 3, own: true }, { step: 6, offset: 0, length: 3, own: true }, { step: 6, offset: 7, length: 3 }],
      [{ step: 5, offset: 7, length: 3, own: true }, { step: 6, offset: 7, length: 3, own: true }, { step: 5, offset: 3, length: 4 }],
    ];
    const plan = planTransfers(inventories, shards([0, 5], [5, 5]))!;
    expect(plan.step).toBe(5);
    expect(plan.transfers).toEqual([
      piece(0, 0, 0, 0, 3),
      piece(1, 2, 0, 3, 2),
      piece(1, 2, 1, 5, 2),
      piece(1, 0, 1, 7, 3),
    ]);
  });

  it("prefers the owner's slice to a copy, and hands over to the receiver's own slice where it starts", () => {
    const inventories = [
      [{ step: 2, offset: 0, length: 10 }],
      [{ step: 2, offset: 0, length: 4, own: true }],
      [{ step: 2, offset: 6, length: 4, own: true }],
    ];
    const plan = planTransfers(inventories, shards([0, 10], [0, 1], [5, 1]))!;
    expect(plan.transfers).toEqual([
      piece(0, 0, 0, 0, 10),
      piece(1, 0, 1, 0, 1),
      piece(0, 0, 2, 5, 1),
    ]);
    const handover = planTransfers([[{ step: 2, offset: 0, length: 10, own: true }], [{ step: 2, offset: 6, length: 4 }]], shards([0, 1], [2, 8]))!;
    expect(handover.transfers.filter((t) => t.to === 1)).toEqual([
      piece(0, 0, 1, 2, 4),
      piece(1, 0, 1, 6, 4),
    ]);
  });

  it('stages 1-2: the parameters outside the state range travel without optimizer state', () => {
    const inventories = [[{ step: 1, offset: 0, length: 5, own: true }], [{ step: 1, offset: 5, length: 5, own: true }]];
    const plan = planTransfers(inventories, [
      { params: { offset: 0, length: 10 }, state: { offset: 0, length: 5 } },
      { params: { offset: 0, length: 10 }, state: { offset: 5, length: 5 } },
    ])!;
    expect(plan.transfers).toEqual([
      piece(0, 0, 0, 0, 5),
      piece(1, 0, 0, 5, 5, true),
      piece(1, 0, 1, 5, 5),
      piece(0, 0, 1, 0, 5, true),
    ]);
  });

  it('is null when no step covers every rank\'s ranges', () => {
    expect(planTransfers([[{ step: 2, offset: 0, length: 3 }], [{ step: 2, offset: 7, length: 3 }]], shards([0, 5], [5, 5]))).toBeNull();
    expect(planTransfers([[], []], shards([0, 5], [5, 5]))).toBeNull();
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

  it('after a re-form drops the abandoned later steps; detached slices come back beside the new ones', () => {
    const store = new ZeroBackups();
    store.add(slice(4, 0, 5), true);
    store.add(slice(5, 0, 5), true);
    store.rewind(4);
    expect(store.inventory()).toEqual([{ step: 4, offset: 0, length: 5, own: true }]);
    const old = store.detach();
    expect(store.floats()).toBe(0);
    store.add(slice(4, 0, 3), true);
    store.reattach(old);
    expect(store.inventory()).toEqual([
      { step: 4, offset: 0, length: 5, own: true },
      { step: 4, offset: 0, length: 3, own: true },
    ]);
  });
});

describe('subSlice', () => {
  it('cuts views of the same floats; a range outside the slice is refused', () => {
    const whole = slice(3, 2, 8);
    const part = subSlice(whole, 4, 3);
    expect(part.range).toEqual({ offset: 4, length: 3 });
    expect(Array.from(part.state.get('adam.v')!)).toEqual(Array.from(whole.state.get('adam.v')!.subarray(2, 5)));
    expect(() => subSlice(whole, 8, 4)).toThrow(RangeError);
    expect(() => subSlice(whole, 1, 2)).toThrow(RangeError);
  });
});
