// Checks of batches.ts that mutation testing (npm run mutate) showed missing: which windows a text
// micro-batch after the first takes (the older test reads micro-batch 0 only), where the evaluation
// windows lie, how many rows the model is built for when shares may change, the rows of an evaluation
// pass, and that image shifts are applied when asked. Each of these gives a run that still trains, on
// the wrong samples or with rows cut off, so nothing else in the suite would notice.
import { describe, expect, it } from 'vitest';
import type { ClassificationSet } from '../data/types';
import { BatchShares } from './batch-shares';
import { ClassificationBatches, evalRows, TextBatches, textEvalBatches } from './batches';

/** A corpus whose token i is i: a window's first input token is its start. */
const corpus = Uint32Array.from({ length: 101 }, (_, i) => i);

describe('text batches: the windows of every micro-batch', () => {
  it("micro-batch m takes the rank's samples m*rows .. (m+1)*rows - 1, each window starting at sample * seqLen", () => {
    const src = new TextBatches(corpus, 10, { globalBatch: 8, microBatches: 2, world: 2, rank: 1, seed: 4 });
    for (const step of [0, 3]) {
      const samples = Array.from(src.sampler.indices(step));
      expect(samples).toHaveLength(4);
      for (const micro of [0, 1]) {
        const b = src.next(step, micro);
        expect(b.rows).toBe(2);
        const firsts = [0, 1].map((r) => b.inputs[r * 10]);
        expect(firsts).toEqual(samples.slice(micro * 2, micro * 2 + 2).map((s) => s * 10));
      }
    }
  });

  it('a text exactly as long as the global batch in windows is accepted; the refusal names the window length (seqLen + 1)', () => {
    // 101 tokens hold 10 windows of 11 (each start a multiple of 10).
    expect(() => new TextBatches(corpus, 10, { globalBatch: 10, microBatches: 1, world: 1, rank: 0, seed: 1 })).not.toThrow();
    expect(() => new TextBatches(corpus, 10, { globalBatch: 11, microBatches: 1, world: 1, rank: 0, seed: 1 })).toThrow(/holds 10 windows of 11; need at least 11/);
  });

  it('evaluation windows are spread evenly over the text, stride = windows / count, rounded down', () => {
    // 10 windows, 4 asked: stride 2.5 -> windows 0, 2, 5, 7 -> starts 0, 20, 50, 70.
    const evals = textEvalBatches(corpus, 10, 3, 4);
    const firsts = evals.flatMap((b) => Array.from({ length: b.rows }, (_, r) => b.inputs[r * 10]));
    expect(firsts).toEqual([0, 20, 50, 70]);
    expect(() => textEvalBatches(corpus.subarray(0, 5), 10, 3, 4)).toThrow(/too short for one window of 11/);
  });
});

describe('rows the model is built for', () => {
  it('an evaluation pass has the smallest micro-batch of the room: floor(floor(batch / world) / micro), at least 1', () => {
    expect(evalRows(64, 4, 2)).toBe(8);
    expect(evalRows(23, 2, 3)).toBe(3);
    expect(evalRows(3, 4, 1)).toBe(1);
  });

  it('with shares that may change, a micro-batch has room for the largest share the table allows (maxCount / micro)', () => {
    const set: ClassificationSet = { name: 'rows', count: 48, features: 1, numClasses: 2, inputs: new Float32Array(48), labels: new Uint8Array(48) };
    const shares = new BatchShares(24, 3, 2);
    // maxCount = the whole global batch (every other share may be zero), 24 samples -> 12 rows per
    // micro-batch, against 4 at step 0.
    const src = new ClassificationBatches(set, { globalBatch: 24, microBatches: 2, world: 3, rank: 0, seed: 1, shares });
    expect(src.microRows).toBe(4);
    expect(src.maxMicroRows).toBe(12);
    shares.set(2, [20, 2, 2]);
    expect(src.next(2, 1).rows).toBe(10);
    expect(src.shareWeightAt(2)).toBeCloseTo((20 * 3) / 24, 12);
    expect(src.shareWeightAt(1)).toBe(1);
    const plain = new ClassificationBatches(set, { globalBatch: 24, microBatches: 2, world: 3, rank: 0, seed: 1 });
    expect(plain.maxMicroRows).toBe(4);
  });

  it('refuses zero, negative or fractional micro-batch counts by name', () => {
    const set: ClassificationSet = { name: 'rows', count: 48, features: 1, numClasses: 2, inputs: new Float32Array(48), labels: new Uint8Array(48) };
    for (const bad of [0, -2, 1.5]) {
      expect(() => new ClassificationBatches(set, { globalBatch: 24, microBatches: bad, world: 3, rank: 0, seed: 1 })).toThrow(`microBatches must be a positive integer, got ${bad}`);
    }
  });
});

describe('image shifts', () => {
  it('are applied when maxShift > 0 (seeded by the run seed and the epoch) and not at 0', () => {
    // 3x3 images, each with a single lit centre pixel: any shift of 1 moves it off the centre.
    const count = 64;
    const inputs = new Float32Array(count * 9);
    for (let i = 0; i < count; i++) inputs[i * 9 + 4] = 1;
    const set: ClassificationSet = { name: 'dots', count, features: 9, numClasses: 2, inputs, labels: new Uint8Array(count), image: { height: 3, width: 3 } };
    const options = { globalBatch: 32, microBatches: 1, world: 1, rank: 0, seed: 5 };
    const centred = (src: ClassificationBatches) => {
      const b = src.next(0, 0);
      return Array.from({ length: b.rows }, (_, r) => b.inputs[r * 9 + 4]).filter((v) => v === 1).length;
    };
    expect(centred(new ClassificationBatches(set, options, 0))).toBe(32);
    // With shifts of up to 1 pixel, (dx, dy) = (0, 0) has chance 1/9: most of 32 images move.
    const shifted = new ClassificationBatches(set, options, 1);
    expect(centred(shifted)).toBeLessThan(16);
    // Seeded: the same step gives the same shifts; the next epoch (2 steps later) gives others.
    const again = new ClassificationBatches(set, options, 1);
    expect(Array.from(again.next(0, 0).inputs)).toEqual(Array.from(shifted.next(0, 0).inputs));
    const epoch0 = Array.from(shifted.next(0, 0).inputs);
    const epoch1 = Array.from(shifted.next(2, 0).inputs);
    const samples0 = Array.from(shifted.sampler.indices(0));
    const samples1 = Array.from(shifted.sampler.indices(2));
    // Compare the same sample in both epochs: its picture must differ for some sample.
    const differs = samples0.some((s, r0) => {
      const r1 = samples1.indexOf(s);
      return r1 >= 0 && epoch0.slice(r0 * 9, r0 * 9 + 9).join() !== epoch1.slice(r1 * 9, r1 * 9 + 9).join();
    });
    expect(differs).toBe(true);
  });
});

// Added after the fifth mutation run: the text source's shareWeightAt (the weight a DP sync gives this
// rank's gradient when the balancer moved the shares) was never read; an empty body passed.
describe('text batches: the share weight follows the table', () => {
  it("a text rank's weight at a step is its count x world / globalBatch under the shares in force", () => {
    const shares = new BatchShares(8, 2, 1);
    const src = new TextBatches(corpus, 10, { globalBatch: 8, microBatches: 1, world: 2, rank: 0, seed: 4, shares });
    shares.set(1, [6, 2]);
    expect(src.shareWeightAt(0)).toBe(1);
    expect(src.shareWeightAt(1)).toBeCloseTo((6 * 2) / 8, 12);
  });
});
