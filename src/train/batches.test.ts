import { describe, expect, it } from 'vitest';
import { syntheticData } from '../data/synthetic';
import { ClassificationBatches, classificationEvalBatches, TextBatches, textEvalBatches } from './batches';

const data = syntheticData({ kind: 'gaussians', classes: 4, trainCount: 100, testCount: 10, seed: 1 });

describe('batch sources', () => {
  it('splits a rank share into equal micro-batches that together are the rank share', () => {
    const src = new ClassificationBatches(data.train, { globalBatch: 16, microBatches: 2, world: 2, rank: 1, seed: 3 });
    expect(src.rowsPerStep).toBe(8);
    expect(src.microRows).toBe(4);
    const expected = Array.from(src.sampler.indices(5)).map((i) => data.train.labels[i]);
    const labels = [...src.next(5, 0).targets, ...src.next(5, 1).targets];
    expect(labels).toEqual(expected);
    const b = src.next(5, 1);
    const i = src.sampler.indices(5)[7];
    expect(b.inputs[3 * 2]).toBe(data.train.inputs[i * 2]);
  });

  it('refuses a rank share that does not split into the micro-batches', () => {
    expect(() => new ClassificationBatches(data.train, { globalBatch: 12, microBatches: 4, world: 2, rank: 0, seed: 1 })).toThrow(/micro-batches/);
  });

  it('evaluation batches cover the held-out set once, in order', () => {
    const batches = classificationEvalBatches(data.test, 4);
    expect(batches.map((b) => b.rows)).toEqual([4, 4, 2]);
    expect(batches.flatMap((b) => [...b.targets])).toEqual([...data.test.labels]);
  });

  it('text batches are windows at multiples of the sequence length, targets shifted by one', () => {
    const corpus = Uint32Array.from({ length: 101 }, (_, i) => i);
    const src = new TextBatches(corpus, 10, { globalBatch: 4, microBatches: 1, world: 1, rank: 0, seed: 2 });
    const b = src.next(0, 0);
    expect(b.seqLen).toBe(10);
    for (let r = 0; r < 4; r++) {
      expect(b.inputs[r * 10] % 10).toBe(0);
      for (let t = 0; t < 10; t++) expect(b.targets[r * 10 + t]).toBe(b.inputs[r * 10 + t] + 1);
    }
    const evals = textEvalBatches(corpus, 10, 3, 5);
    expect(evals.map((e) => e.rows)).toEqual([3, 2]);
    expect(() => new TextBatches(corpus, 10, { globalBatch: 11, microBatches: 1, world: 1, rank: 0, seed: 2 })).toThrow(/windows/);
  });
});
