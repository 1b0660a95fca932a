import { describe, expect, it } from 'vitest';
import { CpuBackend } from '../engine/cpu-backend';
import { syntheticData } from '../data/synthetic';
import { textDataFromString } from '../data/text';
import type { LabEvent } from '../shared/events';
import { defaults } from './defaults';
import { charLmRun, classifierRun } from './recipes';

describe('recipes', () => {
  it('refuse a model that does not fit the data', () => {
    const data = syntheticData({ kind: 'xor' }); // 2 classes; the default synthetic model has 3
    expect(() => classifierRun(new CpuBackend(), data, defaults.synthetic)).toThrow(/does not fit/);
  });

  it('the MNIST default fits 28x28 digits and 10 classes', () => {
    const sizes = defaults.mnist.model.sizes;
    expect(sizes[0]).toBe(784);
    expect(sizes[sizes.length - 1]).toBe(10);
    expect(defaults.mnist.globalBatch % defaults.mnist.microBatches).toBe(0);
  });

  it('a char-LM run takes its vocabulary from the data and evaluates on the validation split', async () => {
    const data = textDataFromString('abcabcabd '.repeat(30), 0.2);
    const events: LabEvent[] = [];
    const recipe = { ...defaults.sotu, model: { blockSize: 8, nLayer: 1, nHead: 1, nEmbd: 8 }, globalBatch: 4, evalWindows: 5 };
    const run = charLmRun(new CpuBackend(), data, recipe, undefined, { onEvent: (e) => events.push(e) });
    expect(run.model.config.vocabSize).toBe(data.vocab.length);
    expect(run.evalBatches.reduce((n, b) => n + b.rows, 0)).toBe(5);
    const before = await run.trainer.evaluate(run.evalBatches);
    expect(before.loss).toBeCloseTo(Math.log(data.vocab.length), 1);
    const text = await run.trainer.sample();
    expect(text).toHaveLength(1 + defaults.sotu.sampleLength);
    expect([...text!].every((ch) => data.vocab.includes(ch))).toBe(true);
    expect(events.map((e) => e.type)).toEqual(['eval', 'sample']);
    expect(events[1]).toMatchObject({ type: 'sample', step: 0, text });
    run.dispose();
  });
});
