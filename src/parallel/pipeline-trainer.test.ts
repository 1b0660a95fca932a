// P pipeline stages x M micro-batches (in-memory transport, a CPU backend per stage) must end where one
// tab ends on the same global batch. The MLP's stages do exactly the arithmetic of one tab with M
// micro-batches of gradient accumulation (each stage accumulates its micro-batches in order 0..M-1),
// so they end on the same bits. The GPT's tied wte gets its head and embedding gradients summed in
// another order (per stage, then first + last), a float-noise difference that AdamW's normalisation
// magnifies where gradients are near zero. Measured on this suite's runs (3 steps, batch 8): MLP 0
// against M-micro-batch accumulation and <= 2.3e-9 against one batch; GPT <= 7.5e-9 (SGD) and
// <= 4.1e-7 (AdamW) — the size of the noise one tab makes by cutting its batch into micro-batches
// (1.5e-7, AdamW). The tolerance is 1e-6, relative to the largest parameter.
import { describe, expect, it } from 'vitest';
import { measureTimeline } from '../collective/pipeline-timeline';
import { expectedPeakInFlight, idealBubbleFraction, PIPELINE_SCHEDULES } from '../collective/pipeline-schedules';
import type { OptimizerConfig } from '../train/optimizer';
import type { StageModelSpec } from '../model/pipeline-stage';
import { ADAMW, maxRelativeDifference, SGD, TINY_GPT, TINY_MLP, trainOneTab, trainPipeline } from './pipeline-test-support';

const TOLERANCE = 1e-6;
const GLOBAL_ROWS = 8;
const STEPS = 3;

const MODELS: [string, StageModelSpec][] = [['mlp', TINY_MLP], ['gpt', TINY_GPT]];
const OPTIMIZERS: [string, OptimizerConfig][] = [['sgd', SGD], ['adamw', ADAMW]];

describe('pipeline training (CPU backend, in-memory transport)', () => {
  for (const [modelName, spec] of MODELS) {
    for (const [optName, optimizer] of OPTIMIZERS) {
      it(`${modelName} + ${optName}: P = 1, 2, 4 stages x M = 1, 4 micro-batches, GPipe and 1F1B, end where one tab ends (relative 1e-6)`, async () => {
        const oneBatch = await trainOneTab(spec, optimizer, GLOBAL_ROWS, 1, STEPS);
        const start = await trainOneTab(spec, optimizer, GLOBAL_ROWS, 1, 0);
        const moved = maxRelativeDifference(start, oneBatch);
        for (const M of [1, 4]) {
          const accumulated = await trainOneTab(spec, optimizer, GLOBAL_ROWS, M, STEPS);
          for (const P of [1, 2, 4]) {
            for (const schedule of PIPELINE_SCHEDULES) {
              const run = await trainPipeline(spec, optimizer, schedule, P, GLOBAL_ROWS, M, { steps: STEPS });
              const vsOne = maxRelativeDifference(run.params, oneBatch);
              const vsAccumulated = maxRelativeDifference(run.params, accumulated);
              console.log(`${modelName} ${optName} P=${P} M=${M} ${schedule}: max relative difference ${vsOne.toExponential(2)} vs one tab, ${vsAccumulated.toExponential(2)} vs one tab with ${M} micro-batches (parameters moved ${moved.toExponential(2)})`);
              expect(vsOne).toBeLessThan(TOLERANCE);
              expect(vsAccumulated).toBeLessThan(TOLERANCE);
              if (spec.kind === 'mlp') expect(Array.from(run.params)).toEqual(Array.from(accumulated));
              expect(run.losses.every((l) => Number.isFinite(l))).toBe(true);
            }
          }
        }
        // ...and training moved the parameters far more than the tolerance.
        expect(moved).toBeGreaterThan(1000 * TOLERANCE);
      });
    }
  }
});

describe('forwards run ahead of the 1F1B list (ahead=1) while gradients are on their way', () => {
  for (const [modelName, spec] of MODELS) {
    it(`${modelName} + adamw, P = 4, M = 8, 10 ms per message: the same bits as the list's order, one activation set more at most`, async () => {
      const options = { steps: 2, mesh: { latencyMs: 10 } };
      const listed = await trainPipeline(spec, ADAMW, '1f1b', 4, GLOBAL_ROWS, 8, options);
      const early = await trainPipeline(spec, ADAMW, '1f1b', 4, GLOBAL_ROWS, 8, { ...options, ahead: 1 });
      expect(Array.from(early.params)).toEqual(Array.from(listed.params));
      expect(early.losses).toEqual(listed.losses);
      // The first stage waits a round trip for each gradient, so it takes the extra set.
      expect(early.stages[0].activationSets).toBe(expectedPeakInFlight('1f1b', 4, 0, 8) + 1);
      for (const stage of early.stages) expect(stage.activationSets).toBeLessThanOrEqual(expectedPeakInFlight('1f1b', 4, stage.stage, 8) + 1);
    });
  }
  it('DP2 x PP2, ahead=1: replicas of each stage bitwise equal, the same bits as without', async () => {
    const options = { steps: 2, replicas: 2, mesh: { latencyMs: 10 } };
    const listed = await trainPipeline(TINY_GPT, ADAMW, '1f1b', 2, GLOBAL_ROWS, 4, options);
    const early = await trainPipeline(TINY_GPT, ADAMW, '1f1b', 2, GLOBAL_ROWS, 4, { ...options, ahead: 1 });
    expect(Array.from(early.params)).toEqual(Array.from(listed.params));
    for (const hashes of early.replicaHashes) expect(new Set(hashes).size).toBe(1);
  });
});

describe('DP x PP (4 tabs: 2 pipelines of 2 stages, each stage averaged over its 2 replicas)', () => {
  for (const [modelName, spec] of MODELS) {
    it(`${modelName} + adamw, 1F1B, M = 2: ends where one tab ends (relative 1e-6), the replicas of each stage bitwise equal`, async () => {
      const oneBatch = await trainOneTab(spec, ADAMW, GLOBAL_ROWS, 1, STEPS);
      const run = await trainPipeline(spec, ADAMW, '1f1b', 2, GLOBAL_ROWS, 2, { steps: STEPS, replicas: 2 });
      const difference = maxRelativeDifference(run.params, oneBatch);
      console.log(`${modelName} adamw DP2 x PP2 M=2: max relative difference ${difference.toExponential(2)} vs one tab`);
      expect(difference).toBeLessThan(TOLERANCE);
      for (const hashes of run.replicaHashes) {
        expect(hashes).toHaveLength(2);
        expect(new Set(hashes).size).toBe(1);
      }
    });
  }
});

describe('DP x PP: each layer group\'s all-reduce starts inside the last backward', () => {
  it('GPT 1F1B, M = 2, 40 ms artificial backward: one all-reduce per layer group, the first started before the last backward\'s delay was over, replicas bitwise equal', async () => {
    const delay = 40;
    const run = await trainPipeline(TINY_GPT, ADAMW, '1f1b', 2, GLOBAL_ROWS, 2, { steps: 1, replicas: 2, computeDelayMs: (kind) => (kind === 'backward' ? delay : 0) });
    for (const hashes of run.replicaHashes) expect(new Set(hashes).size).toBe(1);
    for (const stage of run.stages) {
      const mine = run.events[0].filter((e) => e.stage === stage.stage);
      const allReduces = mine.filter((e) => e.kind === 'allreduce');
      // One each, on the group's index in the stage's layout.
      expect(allReduces.map((e) => e.group).sort()).toEqual(stage.layout.groups.map((g) => g.name).sort());
      expect(allReduces.map((e) => e.micro).sort((a, b) => a - b)).toEqual(stage.layout.groups.map((_, i) => i));
      // The hooks fire while the last backward is recorded, before its artificial delay: a whole-stage
      // average started after the backward would begin no earlier than its start + the delay.
      const lastBackward = mine.filter((e) => e.kind === 'backward').reduce((a, b) => (b.micro > a.micro ? b : a));
      expect(Math.min(...allReduces.map((e) => e.tStart))).toBeLessThan(lastBackward.tStart + delay);
    }
  });
});

describe('the pipeline timeline, measured (artificial 25 ms per forward and backward)', () => {
  // The stages share this process's one thread and this machine's cores with other work: a pause of the
  // process stretches whichever ops it falls in, and moves a step's figure either way (by up to a
  // third, seen at load 26 on 2 cores). The median of five steps keeps a pause or two from deciding it.
  it.each([
    ['gpipe', 4, 4],
    ['1f1b', 4, 4],
    ['gpipe', 4, 8],
    ['1f1b', 4, 8],
    ['gpipe', 4, 16],
    ['1f1b', 4, 16],
  ] as const)('%s P=%i M=%i: median bubble fraction of 5 steps within 20 percent (relative) of (P-1)/(M+P-1), peak activation sets GPipe M, 1F1B min(P - stage, M)', async (schedule, P, M) => {
    const run = await trainPipeline(TINY_MLP, SGD, schedule, P, 4 * M, M, { steps: 5, computeDelayMs: () => 25 });
    const timelines = run.events.map((events) => measureTimeline(events, P));
    const bubbles = timelines.map((t) => t.bubbleFraction).sort((a, b) => a - b);
    const median = bubbles[2];
    const ideal = idealBubbleFraction(P, M);
    const t = timelines.find((x) => x.bubbleFraction === median)!;
    console.log(`${schedule} P=${P} M=${M}: bubble ${median.toFixed(3)} measured (steps: ${bubbles.map((b) => b.toFixed(3)).join(', ')}), ${ideal.toFixed(3)} ideal; busy ms ${t.stages.map((s) => s.busyMs.toFixed(0)).join('/')}, idle ms ${t.stages.map((s) => s.idleMs.toFixed(0)).join('/')}`);
    expect(Math.abs(median - ideal) / ideal).toBeLessThan(0.2);
    for (const stage of run.stages) expect(stage.activationSets).toBe(expectedPeakInFlight(schedule, P, stage.stage, M));
  });

  it('peak activation bytes from real allocations: 1F1B holds min(P - stage, M) sets, GPipe M, so 1F1B <= P/M of GPipe', async () => {
    const [P, M] = [4, 8];
    const one = await trainPipeline(TINY_MLP, SGD, 'gpipe', P, M, 1, { steps: 1 });
    const perSet = one.stages.map((s) => s.peakActivationBytes);
    const gpipe = await trainPipeline(TINY_MLP, SGD, 'gpipe', P, 4 * M, M, { steps: 1 });
    const oneFOneB = await trainPipeline(TINY_MLP, SGD, '1f1b', P, 4 * M, M, { steps: 1 });
    for (let s = 0; s < P; s++) {
      // Sets are allocated for the largest micro-batch (maxRows), so the bytes per set do not depend on M.
      expect(gpipe.stages[s].peakActivationBytes).toBe(M * perSet[s]);
      expect(oneFOneB.stages[s].peakActivationBytes).toBe(Math.min(P - s, M) * perSet[s]);
      expect(oneFOneB.stages[s].peakActivationBytes / gpipe.stages[s].peakActivationBytes).toBeLessThanOrEqual(P / M);
    }
  });
});
