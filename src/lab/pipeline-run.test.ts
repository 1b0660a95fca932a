import { describe, expect, it } from 'vitest';
import { createMemoryMesh } from '../collective/memory-transport';
import { CpuBackend } from '../engine/cpu-backend';
import { ConfigError, type LabConfig } from './config';
import type { LoadedData } from './datasets';
import type { PipelineFigures } from './partitioned-run';
import { relativeError, testConfig } from './parallel-test-support';
import { classification, expectPartsResumeExactly, expectPlacedInPairs, memoryRoom, oneTab, text, trainRoom } from './partitioned-test-support';
import { PIPELINE_RUN_KIND, pipelinePlace } from './pipeline-run';

// P stages x D pipelines end where one tab ends with M micro-batches of gradient accumulation on the
// same global batch: sums in another order only (the clip's norm summed over stages, the DP average).
// Measured: 0 with one pipeline (each layer runs the one tab's own ops, in its order), 2.2e-7 of the
// distance trained for DP2 x PP2 (the average over pipelines), 4.8e-7 for the GPT (its clip norm summed
// over stages, group-clip.ts); 1e-5, as the data-parallel tests use.
const TOLERANCE = 1e-5;

/** Characters the GPT test draws: the first ones of the step's sample (the recipe's 120 take minutes on a loaded CPU). */
const SAMPLE_LENGTH = 16;

/** The one tab a pipeline room is compared with: the pipeline's micro-batches as gradient accumulation, and its text sample. */
const oneTabOf = (config: LabConfig, data: LoadedData, micro: number) =>
  oneTab({ ...config, room: '', pipeline: 1, micro: 0, accum: micro, world: 0 }, data, SAMPLE_LENGTH);

async function pipelineRoom(config: LabConfig, data: LoadedData, wholeLength?: number) {
  // Each tab's own bus: what its dashboard sees.
  const { runs, buses } = memoryRoom(PIPELINE_RUN_KIND, config, data);
  const { hashes, losses, evals } = await trainRoom(runs, config.steps);
  const samples = await Promise.all(runs.map((r) => r.sample(SAMPLE_LENGTH)));
  // Pipeline 0's stages put together in the whole model's layout.
  const figures = runs.map((r) => r.figures() as PipelineFigures);
  // The whole layout may end in alignment padding the parts do not hold: the reference's length.
  const whole = new Float32Array(wholeLength ?? Math.max(...figures.flatMap((f) => f.placement.map((p) => p.wholeOffset + p.length))));
  for (const [rank, run] of runs.entries()) {
    if (figures[rank].pipeline !== 0) continue;
    const part = await run.partParams();
    for (const p of figures[rank].placement) whole.set(part.subarray(p.partOffset, p.partOffset + p.length), p.wholeOffset);
  }
  for (const run of runs) run.dispose();
  return { whole, hashes, losses, evals, samples, buses, figures, groups: runs.map((r) => r.replicaGroup) };
}

describe('pipeline run (the lab wiring of pipeline parallelism)', () => {
  it('places rank r at stage r % P of pipeline floor(r / P), and refuses a room P does not divide', () => {
    expectPlacedInPairs(PIPELINE_RUN_KIND, 'pipeline', (r) => {
      const { stage, pipeline } = pipelinePlace(r, 2);
      return [stage, pipeline];
    });
  });

  it('refuses a global batch that does not split into pipelines x micro-batches', () => {
    const config = testConfig({ room: 'r', world: 4, pipeline: 2, micro: 5, batch: 24 });
    const [transport] = createMemoryMesh(4);
    expect(() => PIPELINE_RUN_KIND.build({ config, backend: new CpuBackend(), data: classification, transport, publish: () => undefined })).toThrow(ConfigError);
  });

  it.each([
    ['MLP, 2 stages, gpipe, AdamW', { pipeline: 2, world: 2, schedule: 'gpipe', micro: 4 }],
    ['MLP, 4 stages, 1f1b, SGD', { pipeline: 4, world: 4, schedule: '1f1b', micro: 4, hidden: '12,10,8', optimizer: 'sgd' }],
    ['MLP, DP2 x PP2, 1f1b, AdamW', { pipeline: 2, world: 4, schedule: '1f1b', micro: 3 }],
  ] as const)(`%s: ends within ${TOLERANCE.toExponential()} of the distance trained of one tab; each stage's replicas hash-equal every step`, async (_, overrides) => {
    const config = testConfig({ room: 'r', steps: 4, ...overrides });
    const reference = await oneTabOf(config, classification, config.micro);
    const room = await pipelineRoom(config, classification, reference.end.length);
    const error = relativeError(room.whole, reference.end, reference.start);
    console.log(`${_}: ${error.toExponential(2)} of the distance trained`);
    expect(error).toBeLessThan(TOLERANCE);
    for (const stepHashes of room.hashes) {
      for (const group of room.groups) expect(new Set(group.map((r) => stepHashes[r])).size).toBe(1);
    }
    // Every tab shows the room's loss and validation loss, the same figure everywhere.
    for (const stepLosses of room.losses) expect(new Set(stepLosses).size).toBe(1);
    expect(new Set(room.evals.map((e) => e.valLoss)).size).toBe(1);
    expect(room.evals[0].accuracy).toBeGreaterThanOrEqual(0);
    expect(room.samples.every((sample) => sample === undefined)).toBe(true); // the MLP writes no text
  });

  it(`GPT, 2 stages, 1f1b: ends within ${TOLERANCE.toExponential()} of one tab (the tied embedding summed, the norm clipped over both stages); the stages sample together the text one tab samples`, async () => {
    const config: LabConfig = { ...testConfig({ room: 'r', model: 'gpt', dataset: 'text', batch: 4, steps: 3, pipeline: 2, world: 2, micro: 2, lr: 0.01 }) };
    const reference = await oneTabOf(config, text, 2);
    const room = await pipelineRoom(config, text, reference.end.length);
    const error = relativeError(room.whole, reference.end, reference.start);
    console.log(`GPT 2 stages: ${error.toExponential(2)} of the distance trained`);
    expect(error).toBeLessThan(TOLERANCE);
    // Every tab ends with the whole sample: the prompt and the characters drawn from the pipeline's
    // probabilities, the characters one tab draws with its parameters (within float rounding of the
    // pipeline's: no draw fell on a boundary in this run).
    expect(reference.sample).toBeDefined();
    expect(reference.sample!.length).toBe(1 + SAMPLE_LENGTH);
    expect(room.samples).toEqual([reference.sample, reference.sample]);
  }, 480_000);

  it('a stage resumes from its own checkpoint to the bits of an uninterrupted run, and refuses another stage\'s', async () => {
    const config = testConfig({ room: 'r', steps: 4, pipeline: 2, world: 2, micro: 2 });
    await expectPartsResumeExactly(PIPELINE_RUN_KIND, config, classification, /this checkpoint holds the part .*"stage":0.*; this tab is .*"stage":1/);
  });

  it("publishes each op as a 'pipeline' event with the tab's rank and its clock's epoch offset, every stage's on every tab once, and measures its figures", async () => {
    const config = testConfig({ room: 'r', steps: 1, pipeline: 2, world: 2, schedule: 'gpipe', micro: 4 });
    const room = await pipelineRoom(config, classification);
    for (const bus of room.buses) {
      const ops = bus.filter((e) => e.type === 'pipeline');
      for (const rank of [0, 1]) expect(ops.filter((e) => e.rank === rank && e.kind === 'forward')).toHaveLength(4);
      expect(ops.every((e) => e.clockOffsetMs === performance.timeOrigin && e.rank === e.stage)).toBe(true);
    }
    const [first] = room.figures;
    // GPipe holds all 4 micro-batches' activations on stage 0: 4 sets, measured from real allocations.
    expect(first.peakActivationBytes).toBe(4 * first.activationBytesPerSet);
    expect(first.expectedPeakActivationBytes).toBe(first.peakActivationBytes);
    const sent = first.steps[0].ops.filter((o) => o.kind === 'send-activation').reduce((s, o) => s + (o.bytes ?? 0), 0);
    expect(sent).toBe(first.wireFormulaBytesPerStep);
  });
});
