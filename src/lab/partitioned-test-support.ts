// Test-only (imported by tests alone): what the partitioned run kinds' tests (pipeline-run.test.ts,
// tensor-run.test.ts, and any further kind's) share on a room of CPU backends over the in-memory
// transport: their data, the one-tab reference run, building and training the room, and the resume check.
import { expect } from 'vitest';
import { createMemoryMesh } from '../collective/memory-transport';
import { viewOf } from '../engine/backend';
import { CpuBackend } from '../engine/cpu-backend';
import { decodeTokens, textDataFromString } from '../data/text';
import { Gpt } from '../model/gpt';
import { paramsHash } from '../model/layout';
import type { LabEvent } from '../shared/events';
import { buildRun } from './build-run';
import type { LabConfig } from './config';
import type { LoadedData } from './datasets';
import { spirals, testConfig } from './parallel-test-support';
import type { PartitionedRun, PartitionedRunKind } from './partitioned-run';
import { recipeFor } from './recipe';
import type { CharLmRecipe } from '../train/defaults';

export const classification: LoadedData = { kind: 'classification', data: spirals };
export const text: LoadedData = { kind: 'text', data: textDataFromString('the quick brown fox jumps over the lazy dog. '.repeat(40)) };

/**
 * The reference: `solo` (a config without a room, each test saying how its kind's split reads on one
 * tab) trained by one tab for `solo.steps` steps; its parameters before and after, its evaluation, and
 * (`sampleLength` > 0, a GPT) the text one tab samples at the end.
 */
export async function oneTab(
  solo: LabConfig,
  data: LoadedData,
  sampleLength = 0,
): Promise<{ start: Float32Array; end: Float32Array; valLoss: number; accuracy?: number; sample?: string }> {
  const backend = new CpuBackend();
  const recipe = recipeFor(solo, 1);
  const { run } = buildRun({ config: solo, recipe, backend, data, transport: undefined, shard: { world: 1, rank: 0 }, publish: () => undefined, alongsideComm: () => [] });
  const start = await backend.read(viewOf(run.model.params));
  await run.trainer.train(solo.steps);
  const end = await backend.read(viewOf(run.model.params));
  const { loss: valLoss, accuracy } = await run.trainer.evaluate(run.evalBatches);
  // One tab's sampler (src/train/recipes.ts): the validation text's first character, seeded by the step.
  let sample: string | undefined;
  if (sampleLength > 0 && data.kind === 'text' && run.model instanceof Gpt) {
    const lm = recipe.recipe as CharLmRecipe;
    const prompt = data.data.val.slice(0, 1);
    const drawn = await run.model.sample(prompt, sampleLength, { temperature: lm.temperature, seed: lm.seed + solo.steps });
    sample = decodeTokens(prompt, data.data.vocab) + decodeTokens(drawn, data.data.vocab);
  }
  run.dispose();
  return { start, end, valLoss, ...(accuracy !== undefined ? { accuracy } : {}), ...(sample !== undefined ? { sample } : {}) };
}

/** `world` tabs of `kind` (default the config's world), each on its own CPU backend, each tab's events in its own list. */
export function memoryRoom<Run extends PartitionedRun>(
  kind: { build: (...args: Parameters<PartitionedRunKind['build']>) => Run },
  config: LabConfig,
  data: LoadedData,
  world = config.world,
): { runs: Run[]; buses: LabEvent[][] } {
  const buses: LabEvent[][] = Array.from({ length: world }, () => []);
  const runs = createMemoryMesh(world).map((transport, rank) => kind.build({ config, backend: new CpuBackend(), data, transport, publish: (e) => buses[rank].push(e) }));
  return { runs, buses };
}

/**
 * Trains every tab of a room `steps` steps together; per step, each tab's loss and the hash of its part
 * (`afterStep` sees the parts themselves). Ends with every tab's evaluation.
 */
export async function trainRoom(runs: readonly PartitionedRun[], steps: number, afterStep: (parts: Float32Array[]) => void = () => undefined) {
  const hashes: string[][] = [];
  const losses: number[][] = [];
  for (let step = 0; step < steps; step++) {
    const results = await Promise.all(runs.map((r) => r.trainStep()));
    losses.push(results.map((r) => r.loss));
    const parts = await Promise.all(runs.map((r) => r.partParams()));
    hashes.push(parts.map(paramsHash));
    afterStep(parts);
  }
  const evals = await Promise.all(runs.map((r) => r.evaluate()));
  return { hashes, losses, evals };
}

/**
 * The placement every partitioned kind makes, in its own words: with size 2 (`key`=2) over 4 tabs,
 * rank r holds part r % 2 of copy floor(r / 2) (`place` gives [part, copy]); 3 tabs are refused (2 does
 * not divide them), 4 are taken.
 */
export function expectPlacedInPairs(kind: PartitionedRunKind, key: 'pipeline' | 'tensor', place: (rank: number) => [part: number, copy: number]): void {
  expect([0, 1, 2, 3].map(place)).toEqual([
    [0, 0],
    [1, 0],
    [0, 1],
    [1, 1],
  ]);
  expect(kind.refuses(testConfig({ room: 'r', [key]: 2 }), 3)).toMatch(/room whose size it divides .* 3 tabs/);
  expect(kind.refuses(testConfig({ room: 'r', [key]: 2 }), 4)).toBeNull();
}

/**
 * A room of two tabs that checkpoints after 2 of 4 steps and resumes each tab from its own file ends on
 * the bits of an uninterrupted run; tab 1 refuses tab 0's file with a message matching `refusal`.
 */
export async function expectPartsResumeExactly(kind: PartitionedRunKind, config: LabConfig, data: LoadedData, refusal: RegExp): Promise<void> {
  const build = () => memoryRoom(kind, config, data, 2).runs;
  const straight = build();
  for (let step = 0; step < 4; step++) await Promise.all(straight.map((r) => r.trainStep()));
  const interrupted = build();
  for (let step = 0; step < 2; step++) await Promise.all(interrupted.map((r) => r.trainStep()));
  const files = await Promise.all(interrupted.map((r, rank) => r.checkpoint({ world: 2, rank, vocab: null })));
  const resumed = build();
  expect(() => resumed[1].restore(files[0], 2)).toThrow(refusal);
  resumed.forEach((r, rank) => r.restore(files[rank], 2));
  expect(resumed.map((r) => r.step)).toEqual([2, 2]);
  for (let step = 2; step < 4; step++) await Promise.all(resumed.map((r) => r.trainStep()));
  for (const [rank, run] of resumed.entries()) expect(paramsHash(await run.partParams())).toBe(paramsHash(await straight[rank].partParams()));
  for (const run of [...straight, ...interrupted, ...resumed]) run.dispose();
}
