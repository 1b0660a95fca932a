import { describe, expect, it } from 'vitest';
import { createMemoryMesh } from '../collective/memory-transport';
import { viewOf } from '../engine/backend';
import { CpuBackend } from '../engine/cpu-backend';
import { textDataFromString } from '../data/text';
import { paramsHash, type ParamLayout } from '../model/layout';
import { isExpertTensor } from '../model/moe-mlp';
import type { ExpertRoutingEvent, LabEvent } from '../shared/events';
import { buildRun } from './build-run';
import { parseConfig, type LabConfig } from './config';
import type { LoadedData } from './datasets';
import { EXPERT_RUN_KIND, expertPlace } from './expert-run';
import type { ExpertFigures } from './partitioned-run';
import { relativeError, testConfig } from './parallel-test-support';
import { expectPartsResumeExactly } from './partitioned-test-support';
import { recipeFor } from './recipe';

// E experts spread over the tabs of a room end where one tab holding all E experts ends, when that tab
// routes each micro-batch as one capacity group per tab (the tabs' shares in rank order): the same
// routing, the same drops; sums in another order only (an expert's rows in one matmul vs per source, the
// replicated tensors' gradients averaged over the room, the experts' over their replicas, the clip's norm
// summed over the group). 1e-5 of the distance trained, as the data-parallel tests use.
const TOLERANCE = 1e-5;
const text: LoadedData = { kind: 'text', data: textDataFromString('the quick brown fox jumps over the lazy dog. '.repeat(200)) };
const base = { room: 'r', model: 'gpt', dataset: 'text', batch: 4, steps: 2, layers: 1, lr: 0.01, experts: 4, topk: 2, capacity: 1 } as const;

async function oneTab(config: LabConfig, groups: number) {
  const solo = { ...config, room: '', world: 0, ep: 0, routegroups: groups };
  const recipe = recipeFor(solo, 1);
  const backend = new CpuBackend();
  const { run } = buildRun({ config: solo, recipe, backend, data: text, transport: undefined, shard: { world: 1, rank: 0 }, publish: () => undefined, alongsideComm: () => [] });
  const start = await backend.read(viewOf(run.model.params));
  await run.trainer.train(config.steps);
  const end = await backend.read(viewOf(run.model.params));
  const layout = run.model.layout;
  run.dispose();
  return { start, end, layout };
}

/** The whole model's parameters from the parts: the replicated tensors from rank 0, each expert from the tab holding it. */
function gatherParts(whole: ParamLayout, layouts: ParamLayout[], parts: Float32Array[]): Float32Array {
  const out = new Float32Array(whole.totalLength);
  for (const e of whole.entries) {
    const holder = layouts.findIndex((l) => l.entries.some((x) => x.name === e.name));
    const from = layouts[holder].entries.find((x) => x.name === e.name)!;
    out.set(parts[holder].subarray(from.offset, from.offset + from.length), e.offset);
  }
  return out;
}

/** The replicated tensors of a tab's part, in layout order. */
function replicated(layout: ParamLayout, part: Float32Array): Float32Array {
  return Float32Array.from(layout.entries.filter((e) => !isExpertTensor(e.name)).flatMap((e) => Array.from(part.subarray(e.offset, e.offset + e.length))));
}

async function expertRoom(config: LabConfig) {
  const world = config.world;
  const events: LabEvent[][] = Array.from({ length: world }, () => []);
  const runs = createMemoryMesh(world).map((transport, rank) => EXPERT_RUN_KIND.build({ config, backend: new CpuBackend(), data: text, transport, publish: (e) => events[rank].push(e) }));
  const layouts = runs.map((r) => (r as unknown as { model: { layout: ParamLayout } }).model.layout);
  const hashes: string[][] = [];
  const losses: number[][] = [];
  const replicatedEqual: boolean[] = [];
  const figures: ExpertFigures[][] = [];
  for (let step = 0; step < config.steps; step++) {
    const results = await Promise.all(runs.map((r) => r.trainStep()));
    losses.push(results.map((r) => r.loss));
    const parts = await Promise.all(runs.map((r) => r.partParams()));
    hashes.push(parts.map(paramsHash));
    replicatedEqual.push(new Set(parts.map((p, rank) => paramsHash(replicated(layouts[rank], p)))).size === 1);
    figures.push(runs.map((r) => r.figures() as ExpertFigures));
  }
  const evals = await Promise.all(runs.map((r) => r.evaluate()));
  const ep = config.ep || world;
  const parts = await Promise.all(runs.slice(0, ep).map((r) => r.partParams()));
  const groups = runs.map((r) => r.replicaGroup);
  for (const run of runs) run.dispose();
  return { parts, layouts: layouts.slice(0, ep), hashes, losses, replicatedEqual, evals, figures, groups, events };
}

describe('expert run (the lab wiring of expert parallelism)', () => {
  it('places rank r at expert rank r % ep of group floor(r / ep); refuses what does not split and what it cannot combine with', () => {
    expect([0, 1, 2, 3].map((r) => expertPlace(r, 2))).toEqual([
      { expertRank: 0, group: 0 },
      { expertRank: 1, group: 0 },
      { expertRank: 0, group: 1 },
      { expertRank: 1, group: 1 },
    ]);
    expect(EXPERT_RUN_KIND.refuses(testConfig({ ...base, experts: 4 }), 3)).toMatch(/experts=4 do not spread evenly over 3 tabs/);
    expect(EXPERT_RUN_KIND.refuses(testConfig({ ...base, ep: 2 }), 3)).toMatch(/ep=2 needs a room whose size it divides/);
    expect(EXPERT_RUN_KIND.refuses(testConfig({ ...base, ep: 2 }), 4)).toBeNull();
    const parse = (q: string) => () => parseConfig(new URLSearchParams(q));
    expect(parse('room=r&world=2&model=gpt&experts=3')).toThrow(/experts=3 do not spread evenly over ep=2/);
    expect(parse('room=r&world=4&model=gpt&experts=4&ep=3')).toThrow(/experts=4 do not spread evenly over ep=3/);
    expect(parse('room=r&world=2&experts=4')).toThrow(/use model=gpt/);
    expect(parse('room=r&world=2&model=gpt&experts=4&tensor=2')).toThrow(/do not combine with pipeline or tensor/);
    expect(parse('room=r&world=2&model=gpt&experts=4&zero=1')).toThrow(/experts and ZeRO do not combine/);
    expect(parse('room=r&world=2&model=gpt&experts=4&compression=fp16')).toThrow(/full precision/);
    expect(parse('model=gpt&experts=1')).toThrow(/experts=1 is the dense MLP/);
    expect(parse('model=gpt&ep=2')).toThrow(/set experts too/);
    expect(parse('room=r&world=2&model=gpt&experts=4&routegroups=2')).toThrow(/routegroups is for one tab/);
    expect(parse('room=r&world=4&model=gpt&experts=4&ep=2&topk=1&capacity=1.5').call(null)).toMatchObject({ experts: 4, ep: 2, topk: 1, capacity: 1.5 });
  });

  it.each([
    ['E=4 on 2 tabs, top-2', { world: 2 }],
    ['E=4 on 4 tabs, top-1', { world: 4, topk: 1 }],
    ['EP2 x DP2, E=4 on 4 tabs, top-2', { world: 4, ep: 2 }],
  ] as const)(`%s: ends within ${TOLERANCE.toExponential()} of the distance trained of one tab holding every expert; replicas hash-equal every step; drops counted, bytes as the router assigned`, async (name, overrides) => {
    const config = testConfig({ ...base, ...overrides });
    const reference = await oneTab(config, config.world);
    const room = await expertRoom(config);
    const whole = gatherParts(reference.layout, room.layouts, room.parts);
    const error = relativeError(whole, reference.end, reference.start);
    console.log(`${name}: ${error.toExponential(2)} of the distance trained`);
    expect(error).toBeLessThan(TOLERANCE);
    // The tabs holding the same experts agree after every step, and every tab's replicated tensors agree.
    for (const stepHashes of room.hashes) for (const group of room.groups) expect(new Set(group.map((r) => stepHashes[r])).size).toBe(1);
    expect(room.replicatedEqual.every(Boolean)).toBe(true);
    for (const stepLosses of room.losses) expect(new Set(stepLosses).size).toBe(1);
    expect(new Set(room.evals.map((e) => e.valLoss)).size).toBe(1);
    expect(room.evals[0].valLoss).toBeGreaterThan(0);
    for (const [step, stepFigures] of room.figures.entries()) {
      for (const f of stepFigures) {
        // Capacity 1 drops assignments; every tab sees every tab's row of the heatmap.
        expect(f.routed).toEqual(stepFigures[0].routed);
        const kept = f.routed.map((row) => row.reduce((s, v) => s + v, 0));
        f.routed.forEach((_, tab) => expect(kept[tab] + f.dropped[tab]).toBe(f.assignments[tab]));
        expect(f.auxLoss.every((a) => a > 0)).toBe(true);
        expect(f.wireBytesPerStep).toBe(f.wireFormulaBytesPerStep);
        expect(f.dataParallelBytesPerStep).toBe(f.dataParallelFormulaBytesPerStep);
        expect(Math.abs(f.paramBytes / f.paramFormulaBytes - 1)).toBeLessThan(0.05);
        expect(Math.abs(f.optimizerBytes / f.optimizerFormulaBytes - 1)).toBeLessThan(0.05);
      }
      if (step === 0) expect(stepFigures[0].dropped.reduce((s, v) => s + v, 0)).toBeGreaterThan(0);
    }
    // The dashboard's event: the same heatmap, one per step.
    const routing = room.events[0].filter((e): e is ExpertRoutingEvent => e.type === 'expert-routing');
    expect(routing.map((e) => e.step)).toEqual([1, 2]);
    expect(routing[1].routed).toEqual(room.figures[1][0].routed);
  }, 900_000);

  it("a tab resumes its experts from its own checkpoint to the bits of an uninterrupted run, and refuses another tab's", async () => {
    const config = testConfig({ ...base, world: 2, steps: 4 });
    await expectPartsResumeExactly(EXPERT_RUN_KIND, config, text, /this checkpoint holds the part .*"rank":0.*; this tab is .*"rank":1/);
  }, 900_000);
});
