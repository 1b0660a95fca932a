import { describe, expect, it } from 'vitest';
import { type DeviceBuffer, viewOf } from '../engine/backend';
import { CpuBackend } from '../engine/cpu-backend';
import { unigramEntropy } from '../data/bigram';
import { syntheticData } from '../data/synthetic';
import { textDataFromString } from '../data/text';
import type { LabEvent, StepMetrics } from '../shared/events';
import { paramsHash } from '../model/layout';
import { defaults } from './defaults';
import { charLmRun, classifierRun } from './recipes';

/** A CpuBackend that counts reads, to prove the loop reads back only when asked. */
class CountingBackend extends CpuBackend {
  reads = 0;
  override read(...args: Parameters<CpuBackend['read']>) {
    this.reads++;
    return super.read(...args);
  }
}

const spirals = syntheticData({ kind: 'spirals', classes: 3, trainCount: 768, testCount: 384, noise: 0.03, seed: 2 });

describe('Trainer', () => {
  it('gradient accumulation: 4 micro-batches of 8 give the gradients of one batch of 32', async () => {
    const gradsFor = async (microBatches: number) => {
      const backend = new CpuBackend();
      let grads: Float32Array | undefined;
      const run = classifierRun(backend, spirals, { ...defaults.synthetic, globalBatch: 32, microBatches }, undefined, {
        gradSync: async ({ grads: g }) => {
          grads = await backend.read(viewOf(g));
        },
      });
      await run.trainer.trainStep();
      await run.trainer.trainStep(); // second step: after an update, with momentum state
      return grads!;
    };
    const one = await gradsFor(1);
    const four = await gradsFor(4);
    let maxDiff = 0;
    let maxAbs = 0;
    for (let i = 0; i < one.length; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(one[i] - four[i]));
      maxAbs = Math.max(maxAbs, Math.abs(one[i]));
    }
    expect(maxAbs).toBeGreaterThan(1e-3);
    expect(maxDiff).toBeLessThan(1e-5 * Math.max(1, maxAbs));
  });

  it('trains the MLP on spirals to >= 95% held-out accuracy in 300 steps', async () => {
    const backend = new CpuBackend();
    const events: LabEvent[] = [];
    const run = classifierRun(backend, spirals, defaults.synthetic, undefined, { onEvent: (e) => events.push(e) });
    const before = await run.trainer.evaluate(run.evalBatches);
    await run.trainer.train(defaults.synthetic.steps);
    const after = await run.trainer.evaluate(run.evalBatches);
    expect(before.accuracy!).toBeLessThan(0.6);
    expect(after.accuracy!).toBeGreaterThanOrEqual(0.95);
    expect(after.loss).toBeLessThan(before.loss / 4);
    const evals = events.filter((e) => e.type === 'eval');
    expect(evals.map((e) => e.step)).toEqual([0, 300]);
  });

  it('measures the overlap: the part of the reported communication that ran while it computed', async () => {
    const overlapFor = async (commIntervals: (since: number, now: number) => [number, number][]) => {
      const backend = new CpuBackend();
      const events: LabEvent[] = [];
      let started = 0;
      const run = classifierRun(backend, spirals, { ...defaults.synthetic, logEvery: 1 }, undefined, {
        onEvent: (e) => events.push(e),
        // Runs after the forward and backward: started is set by gradHooks, at the start of backward.
        gradHooks: () => {
          started = performance.now();
          return undefined;
        },
        gradSync: async () => {
          // Keep communicating for a while after the backward, like the last bucket does.
          await new Promise((resolve) => setTimeout(resolve, 5));
          return { commMs: 1, commIntervals: commIntervals(started, performance.now()) };
        },
      });
      await run.trainer.trainStep();
      await new Promise((r) => setTimeout(r, 0));
      return events.find((e): e is StepMetrics => e.type === 'step')!;
    };
    // Communication from the start of the backward to the end of the hook: it overlapped the backward
    // (compute until the device finished it), but not the 5 ms the hook waited after it.
    const overlapped = await overlapFor((since, now) => [[since, now]]);
    expect(overlapped.overlapMs).toBeGreaterThan(0);
    expect(overlapped.overlapMs).toBeLessThanOrEqual(Math.min(overlapped.computeMs, overlapped.stepMs - 4));
    // Communication entirely after the computation: no overlap.
    const serial = await overlapFor((_since, now) => [[now - 1, now]]);
    expect(serial.overlapMs).toBe(0);
    // No intervals reported (a hook that communicates while the trainer waits): no overlap either.
    const silent = await overlapFor(() => []);
    expect(silent.overlapMs).toBe(0);
  });

  it('reads losses back only on logging steps and emits StepMetrics for them', async () => {
    const backend = new CountingBackend();
    const events: LabEvent[] = [];
    const run = classifierRun(backend, spirals, { ...defaults.synthetic, logEvery: 5 }, undefined, { onEvent: (e) => events.push(e) });
    const readsBefore = backend.reads;
    await run.trainer.train(20);
    await new Promise((r) => setTimeout(r, 0));
    // Steps 1, 5, 10, 15 and 20 log; nothing else reads.
    expect(backend.reads - readsBefore).toBe(5);
    const steps = events.filter((e): e is StepMetrics => e.type === 'step');
    expect(steps.map((s) => s.step)).toEqual([1, 5, 10, 15, 20]);
    expect(steps[4].loss).toBeLessThan(steps[0].loss);
    expect(steps.every((s) => s.stepMs > 0 && s.samplesPerSec > 0 && s.computeMs >= 0)).toBe(true);
    // Asking for the loss twice reads once.
    await run.trainer.lastLoss();
    const reads = backend.reads;
    await run.trainer.lastLoss();
    expect(backend.reads).toBe(reads);
  });

  it('two runs from one seed stay bit-identical (replicas agree)', async () => {
    const hashAfter = async () => {
      const backend = new CpuBackend();
      const run = classifierRun(backend, spirals, defaults.synthetic);
      await run.trainer.train(5);
      return paramsHash(await backend.read(viewOf(run.model.params)));
    };
    expect(await hashAfter()).toBe(await hashAfter());
  });

  it('does not allocate in the step loop', async () => {
    const backend = new CpuBackend();
    const run = classifierRun(backend, spirals, defaults.synthetic);
    await run.trainer.trainStep();
    const buffers = backend.bufferCount();
    await run.trainer.train(10);
    await run.trainer.evaluate(run.evalBatches);
    expect(backend.bufferCount()).toBe(buffers);
    run.dispose();
    expect(backend.bufferCount()).toBe(0);
  });

  it('two ranks that average gradients in gradSync equal one rank on the global batch', async () => {
    const steps = 3;
    const recipe = { ...defaults.synthetic, globalBatch: 32 };
    const readParams = (run: { backend: CpuBackend; model: { params: DeviceBuffer } }) => run.backend.read(viewOf(run.model.params));
    const singleBackend = new CpuBackend();
    const single = classifierRun(singleBackend, spirals, recipe);
    const initial = await readParams({ backend: singleBackend, model: single.model });
    await single.trainer.train(steps);
    const want = await readParams({ backend: singleBackend, model: single.model });
    expect(paramsHash(want)).not.toBe(paramsHash(initial));
    // An in-memory all-reduce: each rank deposits its gradients, the last to arrive wakes the other,
    // both write back the mean.
    const deposits = new Map<number, Float32Array[]>();
    const waiters = new Map<number, () => void>();
    const ranks = [0, 1].map((rank) => {
      const backend = new CpuBackend();
      const run = classifierRun(backend, spirals, recipe, { world: 2, rank }, {
        gradSync: async ({ step, grads }) => {
          const mine = await backend.read(viewOf(grads));
          const list = deposits.get(step) ?? [];
          list[rank] = mine;
          deposits.set(step, list);
          if (list.filter(Boolean).length < 2) await new Promise<void>((resolve) => waiters.set(step, resolve));
          else waiters.get(step)?.();
          const [a, b] = list;
          backend.write(viewOf(grads), a.map((v, i) => (v + b[i]) / 2));
        },
      });
      return { backend, model: run.model, trainer: run.trainer };
    });
    await Promise.all(ranks.map((r) => r.trainer.train(steps)));
    const got = await Promise.all(ranks.map(readParams));
    let maxDiff = 0;
    for (const params of got) for (let i = 0; i < want.length; i++) maxDiff = Math.max(maxDiff, Math.abs(params[i] - want[i]));
    expect(maxDiff).toBeLessThan(1e-5);
    expect(paramsHash(got[0])).toBe(paramsHash(got[1]));
  });

  it('trains the GPT below the unigram entropy of a tiny text', async () => {
    const text = 'the cat sat on the mat. the dog sat on the log. '.repeat(40);
    const data = textDataFromString(text, 0.1);
    const backend = new CpuBackend();
    const recipe = {
      ...defaults.sotu,
      model: { blockSize: 8, nLayer: 1, nHead: 2, nEmbd: 16 },
      globalBatch: 8,
      steps: 80,
      optimizer: { ...defaults.sotu.optimizer, lr: 1e-2 },
      evalWindows: 8,
    };
    const run = charLmRun(backend, data, recipe);
    await run.trainer.train(recipe.steps);
    const val = await run.trainer.evaluate(run.evalBatches);
    const unigram = unigramEntropy(data.train, data.vocab.length);
    expect(val.loss).toBeLessThan(unigram * 0.6);
    expect(val.accuracy).toBeUndefined();
  });

  it('counts communication that ran alongside the step (the last step\'s hash exchange) once, and as overlap with compute', async () => {
    const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    const trainWith = async (alongside: boolean) => {
      const steps: StepMetrics[] = [];
      let sync: [number, number] = [0, 0];
      let asked: [number, number] = [0, 0];
      const run = classifierRun(new CpuBackend(), spirals, { ...defaults.synthetic, logEvery: 1 }, undefined, {
        // A sync whose communication ran after the backward pass: it hides nothing of the computation.
        gradSync: async () => {
          const start = performance.now();
          await sleep(10);
          sync = [start, performance.now()];
          return { commMs: sync[1] - sync[0], commIntervals: [sync] };
        },
        // On the wire from the step's start until 2 ms into the sync: under the forward and backward.
        alongsideComm: alongside
          ? (from, to) => {
              asked = [from, to];
              return [[from, sync[0] + 2]];
            }
          : undefined,
        onEvent: (e) => void (e.type === 'step' && steps.push(e)),
      });
      await run.trainer.trainStep();
      await run.trainer.lastLoss();
      return { step: steps[0], sync, asked };
    };
    const plain = await trainWith(false);
    expect(plain.step.commMs).toBeCloseTo(plain.sync[1] - plain.sync[0], 1);
    expect(plain.step.overlapMs).toBe(0);
    const { step, sync, asked } = await trainWith(true);
    // Asked for the step's own span; counted from the step's start to the sync's end, the 2 ms shared once.
    expect(asked[1] - asked[0]).toBeCloseTo(step.stepMs, 6);
    expect(step.commMs).toBeCloseTo(sync[1] - asked[0], 1);
    expect(step.overlapMs).toBeGreaterThan(0);
    expect(step.overlapMs).toBeLessThanOrEqual(step.computeMs);
  });
});
