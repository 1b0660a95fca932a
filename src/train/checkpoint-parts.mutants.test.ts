// Checks of checkpoint-parts.ts that mutation testing (npm run mutate) showed missing: the edges of the
// range a room may re-cut (an empty range, one past the end, one ending exactly at it), when a re-cut is
// the one-tab format (only the whole vector is), the sections its header declares, and a streamed
// checkpoint closed before anything was written. A wrong answer there gives a file that loads but holds
// the wrong floats, or a part that claims to be whole.
import { describe, expect, it } from 'vitest';
import { loadCheckpoint, saveCheckpoint, type Checkpoint, type CheckpointHeader } from './checkpoint';
import { CheckpointStreamWriter, combineCheckpointParts } from './checkpoint-parts';

const TOTAL = 96;

function header(): Omit<CheckpointHeader, 'sections'> {
  return {
    format: 'webgpu-lab-checkpoint',
    model: { kind: 'mlp', config: { sizes: [2, 3] } },
    layout: { totalLength: TOTAL, tensors: [{ name: 'w', shape: [TOTAL] }] },
    optimizer: { config: { kind: 'adamw' } as never, stateRange: { offset: 0, length: TOTAL }, buffers: ['adam.m', 'adam.v'] },
    step: 3,
    world: 2,
    rank: 0,
    seed: 1,
    sampler: { globalBatch: 8, microBatches: 1, epoch: 0, batchInEpoch: 3 },
    rng: { kind: 'derived-from-seed-and-step', seed: 1, step: 3 },
    recipe: {},
    createdAt: '2026-01-01T00:00:00.000Z',
  };
}

const ramp = (n: number, scale: number) => Float32Array.from({ length: n }, (_, i) => scale * (i + 1));

/** Two halves of one checkpoint, as files and back. */
function halves(): Checkpoint[] {
  const ranges = [
    { offset: 0, length: 48 },
    { offset: 48, length: 48 },
  ];
  return ranges.map((range, index) => {
    const cut = (scale: number) => ramp(TOTAL, scale).slice(range.offset, range.offset + range.length);
    const h = { ...header(), rank: index, part: { kind: 'zero-3 shard', ranges, index }, optimizer: { ...header().optimizer, stateRange: range } };
    return loadCheckpoint(saveCheckpoint(h, cut(1), new Map([['adam.m', cut(-2)], ['adam.v', cut(3)]])));
  });
}

describe('combineCheckpointParts: the range asked for', () => {
  it('refuses an empty range, a negative offset and a range one float past the end, naming the range', () => {
    const parts = halves();
    expect(() => combineCheckpointParts(parts, { offset: 10, length: 0 })).toThrow(/range \[10, 10\) lies outside the 96 parameters/);
    expect(() => combineCheckpointParts(parts, { offset: -1, length: 4 })).toThrow(/range \[-1, 3\) lies outside/);
    expect(() => combineCheckpointParts(parts, { offset: 90, length: 7 })).toThrow(/range \[90, 97\) lies outside/);
  });

  it('a range of one float, and one ending exactly at the last parameter, are cut', () => {
    const parts = halves();
    expect(Array.from(combineCheckpointParts(parts, { offset: 47, length: 1 }).params)).toEqual([48]);
    const tail = combineCheckpointParts(parts, { offset: 90, length: 6 });
    expect(Array.from(tail.params)).toEqual([91, 92, 93, 94, 95, 96]);
    expect(Array.from(tail.state.get('adam.v') ?? [])).toEqual([91, 92, 93, 94, 95, 96].map((x) => 3 * x));
  });

  it('only the whole vector is the one-tab format; a range starting at 0 or ending at the end is a re-cut part', () => {
    const parts = halves();
    expect(combineCheckpointParts(parts, { offset: 0, length: TOTAL }).header.part).toBeUndefined();
    for (const range of [
      { offset: 0, length: 40 },
      { offset: 40, length: 56 },
    ]) {
      expect(combineCheckpointParts(parts, range).header.part).toEqual({ kind: 're-cut', ranges: [range], index: 0 });
    }
  });

  it('declares the params and every optimizer buffer as sections of the range length, in the header order', () => {
    const cut = combineCheckpointParts(halves(), { offset: 8, length: 24 });
    expect(cut.header.sections).toEqual([
      { name: 'params', length: 24 },
      { name: 'adam.m', length: 24 },
      { name: 'adam.v', length: 24 },
    ]);
  });

  it('names the optimizer buffer whose state a part lacks', () => {
    const [a, b] = halves();
    const noV = { ...b, state: new Map([['adam.m', b.state.get('adam.m') as Float32Array], ['adam.v', new Float32Array(0)]]) };
    const lacking = { ...noV, header: { ...noV.header, optimizer: { ...noV.header.optimizer, stateRange: { offset: 48, length: 0 } } } };
    expect(() => combineCheckpointParts([a, lacking], { offset: 0, length: TOTAL })).toThrow(/hold no optimizer state adam.m for \[48, 96\)/);
    expect(() => combineCheckpointParts([], { offset: 0, length: 1 })).toThrow(/no checkpoint parts given/);
  });
});

describe('CheckpointStreamWriter with nothing to write', () => {
  it("a checkpoint whose sections are all empty, closed without a write, still writes its prefix and header: the bytes equal saveCheckpoint's", async () => {
    const h: CheckpointHeader = { ...header(), layout: { totalLength: 0, tensors: [] }, optimizer: { ...header().optimizer, stateRange: { offset: 0, length: 0 }, buffers: [] }, sections: [{ name: 'params', length: 0 }] };
    const chunks: Uint8Array[] = [];
    const writer = new CheckpointStreamWriter(h, (chunk) => void chunks.push(chunk.slice()));
    await writer.close();
    const bytes = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
    chunks.reduce((at, c) => (bytes.set(c, at), at + c.length), 0);
    expect(bytes).toEqual(saveCheckpoint(h, new Float32Array(0), new Map()));
  });
});
