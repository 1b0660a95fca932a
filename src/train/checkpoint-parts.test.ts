// Checkpoint parts and streamed checkpoints: a file written a piece at a time equals saveCheckpoint's
// bytes for the same header and floats; parts of a partition re-cut to any range (or the whole vector)
// hold exactly the floats of that range; parts of different checkpoints, gaps and short streams are
// refused with the reason.
import { describe, expect, it } from 'vitest';
import { CheckpointError, loadCheckpoint, saveCheckpoint, type Checkpoint, type CheckpointHeader } from './checkpoint';
import { CheckpointStreamWriter, combineCheckpointParts } from './checkpoint-parts';

const TOTAL = 200;
const BUFFERS = ['adam.m', 'adam.v'];

function header(step = 7): Omit<CheckpointHeader, 'sections'> {
  return {
    format: 'webgpu-lab-checkpoint',
    model: { kind: 'mlp', config: { sizes: [2, 3] } },
    layout: { totalLength: TOTAL, tensors: [{ name: 'w', shape: [TOTAL] }] },
    optimizer: { config: { kind: 'adamw' } as never, stateRange: { offset: 0, length: TOTAL }, buffers: BUFFERS },
    step,
    world: 4,
    rank: 0,
    seed: 1,
    sampler: { globalBatch: 8, microBatches: 1, epoch: 0, batchInEpoch: step },
    rng: { kind: 'derived-from-seed-and-step', seed: 1, step },
    recipe: {},
    createdAt: '2026-01-01T00:00:00.000Z',
  };
}

const ramp = (n: number, scale: number) => Float32Array.from({ length: n }, (_, i) => scale * (i + 1));
const whole = { params: ramp(TOTAL, 0.5), m: ramp(TOTAL, -0.25), v: ramp(TOTAL, 0.125) };

/** The 4 parts of `whole` under the partition [0,64), [64,128), [128,192), [192,200), as files and back. */
function parts(step = 7): Checkpoint[] {
  const ranges = [0, 64, 128, 192].map((offset, i, all) => ({ offset, length: (all[i + 1] ?? TOTAL) - offset }));
  return ranges.map((range, index) => {
    const cut = (a: Float32Array) => a.slice(range.offset, range.offset + range.length);
    const h = { ...header(step), rank: index, part: { kind: 'zero-3 shard', ranges, index }, optimizer: { ...header(step).optimizer, stateRange: range } };
    return loadCheckpoint(saveCheckpoint(h, cut(whole.params), new Map([['adam.m', cut(whole.m)], ['adam.v', cut(whole.v)]])));
  });
}

describe('streamed checkpoints', () => {
  it('written in pieces of any size (crossing sections), the file equals saveCheckpoint\'s byte for byte', async () => {
    const h = header();
    const expected = saveCheckpoint(h, whole.params, new Map([['adam.m', whole.m], ['adam.v', whole.v]]));
    const chunks: Uint8Array[] = [];
    const full: CheckpointHeader = { ...h, sections: ['params', ...BUFFERS].map((name) => ({ name, length: TOTAL })) };
    const writer = new CheckpointStreamWriter(full, (chunk) => void chunks.push(chunk.slice()));
    const all = new Float32Array([...whole.params, ...whole.m, ...whole.v]);
    for (let at = 0, size = 1; at < all.length; at += size, size = (size * 7) % 97 + 1) await writer.write(all.subarray(at, Math.min(all.length, at + size)));
    await writer.close();
    const bytes = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
    chunks.reduce((at, c) => (bytes.set(c, at), at + c.length), 0);
    expect(bytes).toEqual(expected);
    expect(loadCheckpoint(bytes).params).toEqual(whole.params);
  });

  it('refuses floats past the last section and an end before the sections are complete', async () => {
    const full: CheckpointHeader = { ...header(), sections: [{ name: 'params', length: 4 }] };
    const over = new CheckpointStreamWriter(full, () => undefined);
    await expect(over.write(new Float32Array(5))).rejects.toThrow(/1 floats past the last section/);
    const short = new CheckpointStreamWriter(full, () => undefined);
    await short.write(new Float32Array(3));
    await expect(short.close()).rejects.toThrow(/section params at 3 of 4 floats/);
  });
});

describe('checkpoint parts', () => {
  it('a part file records its partition and holds only its range', () => {
    const [, second] = parts();
    expect(second.header.part).toEqual({ kind: 'zero-3 shard', ranges: parts()[0].header.part!.ranges, index: 1 });
    expect(second.params).toEqual(whole.params.slice(64, 128));
  });

  it.each([
    ['the whole vector (the one-tab format)', { offset: 0, length: TOTAL }],
    ['a range across three parts (a rank of a 2-tab room)', { offset: 50, length: 100 }],
    ['a range inside one part', { offset: 130, length: 10 }],
  ])('re-cut to %s: exactly the floats of the range', (_, range) => {
    const cut = combineCheckpointParts(parts().reverse(), range);
    const at = (a: Float32Array) => a.slice(range.offset, range.offset + range.length);
    expect(cut.params).toEqual(at(whole.params));
    expect(cut.state.get('adam.m')).toEqual(at(whole.m));
    expect(cut.state.get('adam.v')).toEqual(at(whole.v));
    expect(cut.header.optimizer.stateRange).toEqual(range);
    // It saves and loads as a checkpoint of its own.
    const again = loadCheckpoint(saveCheckpoint(cut.header, cut.params, cut.state));
    expect(again.params).toEqual(cut.params);
    expect(again.header.part === undefined).toBe(range.length === TOTAL);
  });

  it('refuses a range the given parts do not cover, parts of other steps, and no parts', () => {
    const [a, b, , d] = parts();
    expect(() => combineCheckpointParts([a, b, d], { offset: 0, length: TOTAL })).toThrow(/hold no parameters for \[128, 200\)/);
    expect(() => combineCheckpointParts([a, parts(8)[1]], { offset: 0, length: 128 })).toThrow(/not of one checkpoint: step 8/);
    expect(() => combineCheckpointParts([], { offset: 0, length: 1 })).toThrow(CheckpointError);
  });

  it('a damaged part description is refused on load', () => {
    const [a] = parts();
    const h = { ...a.header, part: { ...a.header.part!, index: 9 } };
    expect(() => loadCheckpoint(saveCheckpoint(h, a.params, a.state))).toThrow(/part.index 9 is not one of the 4 parts/);
  });
});
