// ExpertGptTrainer against the one-tab reference, directly and small (a 2-block GPT of width 8 with 4
// experts, 2 micro-batches, 3 steps): the room's tabs each hold E/N experts and train on their own share,
// the reference holds every expert and trains on the whole global batch routed as one capacity group
// per tab (the tabs' shares in rank order, moe.groups), so both route alike and drop alike and differ
// only in the order of sums. Plain SGD, so that a gradient off by a constant factor moves the
// parameters by that factor (AdamW would hide it). Every test names the bug it is there to catch.
import { describe, expect, it } from 'vitest';
import { COLLECTIVE_IDS } from '../collective/collective-ids';
import { runAllReduce } from '../collective/collectives';
import { GroupTransport } from '../collective/group-transport';
import { createMemoryMesh } from '../collective/memory-transport';
import type { MessageTag, Transport } from '../collective/types';
import { viewOf } from '../engine/backend';
import { CpuBackend } from '../engine/cpu-backend';
import { Rng } from '../data/random';
import { Gpt, type GptConfig } from '../model/gpt';
import type { Batch } from '../model/model';
import { isExpertTensor, type GptMoeConfig } from '../model/moe-mlp';
import type { BatchSource } from '../train/batches';
import { GradClipper, Optimizer, type OptimizerConfig } from '../train/optimizer';
import { ExpertGptTrainer, type ExpertStepReport, type ExpertTrainerIds } from './moe-gpt-trainer';

const MOE: GptMoeConfig = { experts: 4, topk: 2, capacityFactor: 1, hidden: 16 };
const CONFIG: GptConfig = { vocabSize: 13, blockSize: 6, nLayer: 2, nHead: 2, nEmbd: 8, moe: MOE };
const SGD: OptimizerConfig = { kind: 'sgd', lr: 0.5, momentum: 0, weightDecay: 0 };
const SEED = 5;
/** Sequences per micro-batch on each tab; micro-batches per step; steps. */
const ROWS = 2;
const MICRO = 2;
const STEPS = 3;
/** A learning rate that changes every step: a trainer reading the wrong step's rate drifts from the reference. */
const learningRate = (step: number) => SGD.lr * (1 + step);
const IDS: ExpertTrainerIds = {
  exchanges: COLLECTIVE_IDS.expertExchanges.first,
  exchangesCount: COLLECTIVE_IDS.expertExchanges.count,
  denseAverage: COLLECTIVE_IDS.expert.first,
  expertAverage: COLLECTIVE_IDS.expert.first + 1,
  clipNorm: COLLECTIVE_IDS.expert.first + 2,
};
/**
 * Measured: the room ends 5e-8 to 1.5e-7 of the distance trained from the reference (sums in another
 * order only); 1e-5 is ~70x that, while a 1% error in a gradient moves the end by ~1e-2 of it.
 */
const TOLERANCE = 1e-5;

/** Tab `rank`'s micro-batch `micro` of `step`: seeded tokens, the next token the target. */
function tabBatch(step: number, micro: number, rank: number, rows = ROWS): Batch {
  const rng = new Rng(1000 * step + 100 * micro + rank + 1);
  const T = CONFIG.blockSize;
  const stream = Array.from({ length: rows * (T + 1) }, () => Math.floor(rng.uniform() * CONFIG.vocabSize) % CONFIG.vocabSize);
  const inputs = new Uint32Array(rows * T);
  const targets = new Uint32Array(rows * T);
  for (let r = 0; r < rows; r++) {
    for (let t = 0; t < T; t++) {
      inputs[r * T + t] = stream[r * (T + 1) + t];
      targets[r * T + t] = stream[r * (T + 1) + t + 1];
    }
  }
  return { inputs, targets, rows };
}

/** The room's micro-batch: every tab's share, in rank order. */
function roomBatch(step: number, micro: number, world: number): Batch {
  const shares = Array.from({ length: world }, (_, rank) => tabBatch(step, micro, rank));
  const concat = (pick: (b: Batch) => Uint32Array) => Uint32Array.from(shares.flatMap((b) => Array.from(pick(b))));
  return { inputs: concat((b) => b.inputs as Uint32Array), targets: concat((b) => b.targets), rows: world * ROWS };
}

function tabBatches(rank: number, weight?: { shareWeight?: number; shareWeightAt?: (step: number) => number }): BatchSource {
  return { rowsPerStep: ROWS * MICRO, microBatches: MICRO, ...weight, next: (step, micro) => tabBatch(step, micro, rank) };
}

interface ReferenceRun {
  start: Float32Array;
  end: Float32Array;
  /** Per step: the mean loss, and per block the experts' kept assignments, drops and aux loss (averaged over micro-batches). */
  losses: number[];
  routing: { tokensPerExpert: number[]; dropped: number; aux: number[] }[];
  /** Per step, the gradient's norm before clipping. */
  norms: number[];
  layout: Gpt['layout'];
}

/** One tab holding every expert: the whole global batch per micro-batch, routed as `world` capacity groups. */
async function reference(world: number, options: { clipNorm?: number; lrScale?: number; constantLr?: boolean } = {}): Promise<ReferenceRun> {
  const b = new CpuBackend();
  const model = new Gpt(b, { ...CONFIG, moe: { ...MOE, groups: world } }, world * ROWS);
  model.init(SEED);
  const optimizer = new Optimizer(b, model.layout, SGD);
  const clipper = new GradClipper(b);
  const start = await b.read(viewOf(model.params));
  const run: ReferenceRun = { start, end: start, losses: [], routing: [], norms: [], layout: model.layout };
  for (let step = 0; step < STEPS; step++) {
    b.fill(viewOf(model.grads), 0);
    const rows = world * ROWS * CONFIG.blockSize;
    let loss = 0;
    const routing = { tokensPerExpert: new Array<number>(MOE.experts).fill(0), dropped: 0, aux: new Array<number>(CONFIG.nLayer).fill(0) };
    for (let micro = 0; micro < MICRO; micro++) {
      const result = model.forward(roomBatch(step, micro, world), 1 / (rows * MICRO));
      model.backward();
      for (const v of await b.read(viewOf(result.losses.buf, result.losses.offset, rows))) loss += v / (rows * MICRO);
      for (const [l, block] of (await model.moeStats()).entries()) {
        block.tokensPerExpert.forEach((v, e) => (routing.tokensPerExpert[e] += v));
        routing.dropped += block.dropped;
        routing.aux[l] += block.aux / MICRO;
      }
    }
    const grads = await b.read(viewOf(model.grads));
    run.norms.push(Math.sqrt(grads.reduce((s, g) => s + g * g, 0)));
    if (options.clipNorm) clipper.clip(model.grads, options.clipNorm);
    optimizer.update(model.params, model.grads, step + 1, (options.constantLr ? SGD.lr : learningRate(step)) * (options.lrScale ?? 1));
    run.losses.push(loss);
    run.routing.push(routing);
  }
  run.end = await b.read(viewOf(model.params));
  return run;
}

interface Room {
  trainers: ExpertGptTrainer[];
  models: Gpt[];
  backends: CpuBackend[];
  /** Per step, every tab's report. */
  reports: ExpertStepReport[][];
}

/** A room of `world` tabs in expert groups of `ep` (EP x DP when ep < world), as src/lab/expert-run.ts wires it. */
function room(
  world: number,
  ep: number,
  options: { clipNorm?: number; weight?: { shareWeight?: number; shareWeightAt?: (step: number) => number }; constantLr?: boolean; tags?: MessageTag[][] } = {},
): Room {
  const mesh = createMemoryMesh(world).map((t, rank) => (options.tags ? recording(t, (options.tags[rank] = [])) : t));
  const D = world / ep;
  const El = MOE.experts / ep;
  const backends = mesh.map(() => new CpuBackend());
  const models = mesh.map((_, rank) => {
    const model = new Gpt(backends[rank], { ...CONFIG, moe: { ...MOE, held: { first: (rank % ep) * El, count: El } } }, ROWS);
    model.init(SEED);
    return model;
  });
  const trainers = mesh.map((transport: Transport, rank) => {
    const group = Math.floor(rank / ep);
    const replicaGroup = Array.from({ length: D }, (_, d) => d * ep + (rank % ep));
    return new ExpertGptTrainer({
      backend: backends[rank],
      model: models[rank],
      optimizer: new Optimizer(backends[rank], models[rank].layout, SGD),
      batches: tabBatches(rank, options.weight),
      experts: new GroupTransport(transport, Array.from({ length: ep }, (_, k) => group * ep + k)),
      room: transport,
      ...(D > 1 ? { replicas: new GroupTransport(transport, replicaGroup) } : {}),
      ids: IDS,
      ...(options.constantLr ? {} : { learningRate }),
      ...(options.clipNorm ? { clipNorm: options.clipNorm } : {}),
    });
  });
  return { trainers, models, backends, reports: [] };
}

/** A transport that notes the tag of every message it sends. */
function recording(inner: Transport, tags: MessageTag[]): Transport {
  return { rank: inner.rank, world: inner.world, send: (to, tag, payload) => (tags.push(tag), inner.send(to, tag, payload)), recv: (from, tag) => inner.recv(from, tag) };
}

async function train(r: Room): Promise<Room> {
  for (let step = 0; step < STEPS; step++) r.reports.push(await Promise.all(r.trainers.map((t) => t.trainStep())));
  return r;
}

/** The whole model's parameters from the tabs of the first expert group: the replicated tensors from rank 0, each expert from its holder. */
async function gathered(r: Room, ep: number, layout: Gpt['layout']): Promise<Float32Array> {
  const parts = await Promise.all(r.models.slice(0, ep).map((m, rank) => r.backends[rank].read(viewOf(m.params))));
  const out = new Float32Array(layout.totalLength);
  for (const e of layout.entries) {
    const holder = r.models.findIndex((m) => m.layout.entries.some((x) => x.name === e.name));
    const from = r.models[holder].layout.entries.find((x) => x.name === e.name)!;
    out.set(parts[holder].subarray(from.offset, from.offset + from.length), e.offset);
  }
  return out;
}

/** Largest difference from the reference's end over the largest distance the reference trained. */
function errorOfDistance(got: Float32Array, ref: ReferenceRun): number {
  let diff = 0;
  let moved = 0;
  for (let i = 0; i < got.length; i++) {
    diff = Math.max(diff, Math.abs(got[i] - ref.end[i]));
    moved = Math.max(moved, Math.abs(ref.end[i] - ref.start[i]));
  }
  return diff / moved;
}

/** Every tab's parameters, as bytes. */
async function partsOf(r: Room): Promise<Buffer[]> {
  return Promise.all(r.models.map(async (m, rank) => Buffer.from((await r.backends[rank].read(viewOf(m.params))).buffer)));
}

/** The replicated (non-expert) tensors of a tab's parameters. */
async function replicatedOf(r: Room, rank: number): Promise<Float32Array> {
  const params = await r.backends[rank].read(viewOf(r.models[rank].params));
  return Float32Array.from(r.models[rank].layout.entries.filter((e) => !isExpertTensor(e.name)).flatMap((e) => Array.from(params.subarray(e.offset, e.offset + e.length))));
}

describe('ExpertGptTrainer: a room of tabs ends where one tab holding every expert ends (SGD)', () => {
  it.each([
    ['E=4 on 2 tabs', 2, 2],
    ['E=4 on 4 tabs', 4, 4],
    ['EP2 x DP2, E=4 on 4 tabs', 4, 2],
    ['EP1 x DP2 (every tab holds all 4 experts)', 2, 1],
  ] as const)(
    `%s, top-2, capacity 1 (drops), 2 micro-batches, a learning rate per step: within ${TOLERANCE} of the distance trained (catches a wrong share of the dense average, a missing /N or replica average on the experts, a wrong gradient scale or step's rate); replicated tensors equal on every tab and each expert's replicas equal, bit for bit`,
    async (_, world, ep) => {
      const ref = await reference(world);
      const r = await train(room(world, ep));
      expect(errorOfDistance(await gathered(r, ep, ref.layout), ref)).toBeLessThan(TOLERANCE);
      // The update did move the parameters: the tolerance is not trivially met.
      expect(Math.max(...ref.end.map((v, i) => Math.abs(v - ref.start[i])))).toBeGreaterThan(1e-2);
      const replicated = await Promise.all(r.models.map((_, rank) => replicatedOf(r, rank)));
      for (const rep of replicated) expect(Buffer.from(rep.buffer).equals(Buffer.from(replicated[0].buffer))).toBe(true);
      const parts = await partsOf(r);
      for (let rank = ep; rank < world; rank++) expect(parts[rank].equals(parts[rank % ep])).toBe(true);
      expect(r.trainers.map((t) => t.step)).toEqual(r.trainers.map(() => STEPS));
    },
  );

  it('the loss each tab reports: mean over tabs equals the reference\'s mean loss (cross-entropy + aux) every step, to 1e-6 relative (catches a loss summed over the wrong rows or micro-batches)', async () => {
    const world = 2;
    const ref = await reference(world);
    const r = await train(room(world, world));
    for (const [step, reports] of r.reports.entries()) {
      const mean = reports.reduce((s, x) => s + x.loss, 0) / world;
      expect(Math.abs(mean / ref.losses[step] - 1)).toBeLessThan(1e-6);
      expect(reports.map((x) => x.step)).toEqual([step, step]);
    }
  });

  it('routing: the tabs\' kept assignments per expert add up to the reference\'s, drops too, assignments are tokens x topk x blocks, and the aux loss per block averaged over tabs is the reference\'s (catches counts added to the wrong expert, missing micro-batches, aux not averaged over micro-batches)', async () => {
    const world = 2;
    const ref = await reference(world);
    const r = await train(room(world, world));
    for (const [step, reports] of r.reports.entries()) {
      const tokens = reports.reduce((s, x) => s.map((v, e) => v + x.routing.tokensPerExpert[e]), new Array<number>(MOE.experts).fill(0));
      expect(tokens).toEqual(ref.routing[step].tokensPerExpert);
      expect(reports.reduce((s, x) => s + x.routing.dropped, 0)).toBe(ref.routing[step].dropped);
      expect(ref.routing[step].dropped).toBeGreaterThan(0);
      for (const x of reports) {
        expect(x.routing.assignments).toBe(MICRO * ROWS * CONFIG.blockSize * MOE.topk * CONFIG.nLayer);
        expect(x.routing.tokensPerExpert.reduce((s, v) => s + v, 0) + x.routing.dropped).toBe(x.routing.assignments);
      }
      for (let l = 0; l < CONFIG.nLayer; l++) {
        const mean = reports.reduce((s, x) => s + x.routing.auxLoss[l], 0) / world;
        expect(mean).toBeGreaterThan(0);
        expect(Math.abs(mean / ref.routing[step].aux[l] - 1)).toBeLessThan(1e-5);
      }
    }
  });

  it.each([
    ['EP2 x DP2', 2],
    ['E=4 on 4 tabs', 4],
  ] as const)(
    "global-norm clipping at a fifth of the gradient's norm, %s: ends where the reference clipped by the same factor ends (catches a norm summing the replicated tensors on every tab or on the wrong tabs, or missing an expert)",
    async (_, ep) => {
      const world = 4;
      const unclipped = await reference(world);
      const clipNorm = Math.min(...unclipped.norms) / 5;
      const ref = await reference(world, { clipNorm });
      const r = await train(room(world, ep, { clipNorm }));
      expect(errorOfDistance(await gathered(r, ep, ref.layout), ref)).toBeLessThan(TOLERANCE);
      // Clipping changed the result: the unclipped run ends far from the clipped one.
      expect(errorOfDistance(unclipped.end, ref)).toBeGreaterThan(0.1);
    },
  );

  it('one tab holding every expert (a room of one): the same bits as the reference, no exchange, nothing sent (catches averages that assume a partner)', async () => {
    const ref = await reference(1);
    const r = await train(room(1, 1));
    expect(Array.from(await gathered(r, 1, ref.layout))).toEqual(Array.from(ref.end));
    for (const [x] of r.reports) expect([x.exchanges, x.rowsSentToOthers, x.denseBytesSent, x.expertBytesSent]).toEqual([[], 0, 0, 0]);
  });

  it('without a schedule the optimizer\'s own rate: ends where the reference at a constant rate ends (catches a schedule assumed present)', async () => {
    const ref = await reference(2, { constantLr: true });
    const r = await train(room(2, 2, { constantLr: true }));
    expect(errorOfDistance(await gathered(r, 2, ref.layout), ref)).toBeLessThan(TOLERANCE);
  });

  it('a tab\'s share weight scales its gradient: weight 2 on every tab ends where the reference at twice the learning rate ends, and shareWeightAt(step) wins over shareWeight (catches the weight dropped or read from the wrong field)', async () => {
    const world = 2;
    const ref = await reference(world, { lrScale: 2 });
    const r = await train(room(world, world, { weight: { shareWeight: 1, shareWeightAt: () => 2 } }));
    expect(errorOfDistance(await gathered(r, world, ref.layout), ref)).toBeLessThan(TOLERANCE);
    const plain = await train(room(world, world, { weight: { shareWeight: 2 } }));
    expect(errorOfDistance(await gathered(plain, world, ref.layout), ref)).toBeLessThan(TOLERANCE);
  });
});

describe('ExpertGptTrainer: what a step reports', () => {
  it('exchanges: every MoE block of every micro-batch runs its forward and backward all-to-alls, labelled by pass, block and micro-batch, in order; rows sent to other tabs are the assignments routed to the other tab\'s experts and those returned to it, both passes (catches labels or counts off by one)', async () => {
    const world = 2;
    const r = await train(room(world, world));
    const El = MOE.experts / world;
    for (const reports of r.reports) {
      for (const [rank, x] of reports.entries()) {
        // Per block: forward the counts' header, the tokens and the experts' outputs; backward the outputs' gradients and the inputs'.
        const expected: string[] = [];
        for (let micro = 0; micro < MICRO; micro++) {
          for (let block = 0; block < CONFIG.nLayer; block++) expected.push(...Array.from({ length: 3 }, () => `${micro}:forward:${block}`));
          for (let block = CONFIG.nLayer - 1; block >= 0; block--) expected.push(...Array.from({ length: 2 }, () => `${micro}:backward:${block}`));
        }
        expect(x.exchanges.map((e) => `${e.micro}:${e.pass}:${e.block}`)).toEqual(expected);
        // Every exchange but the headers carries rows of C floats: the rows this tab sent to the other.
        const isHeader = (i: number) => i % (5 * CONFIG.nLayer) < 3 * CONFIG.nLayer && (i % (5 * CONFIG.nLayer)) % 3 === 0;
        expect(x.exchanges.filter((_, i) => isHeader(i)).every((e) => e.bytesSent > 0)).toBe(true);
        const rowBytes = x.exchanges.filter((_, i) => !isHeader(i)).reduce((s, e) => s + e.bytesSent, 0);
        expect(rowBytes).toBe(4 * CONFIG.nEmbd * x.rowsSentToOthers);
        // Out to the other tab's experts, and back from this tab's experts to the other tab's tokens: twice (forward, backward).
        const other = reports[1 - rank];
        const held = (e: number, tab: number) => Math.floor(e / El) === tab;
        const out = x.routing.tokensPerExpert.reduce((s, v, e) => (held(e, rank) ? s : s + v), 0);
        const back = other.routing.tokensPerExpert.reduce((s, v, e) => (held(e, rank) ? s + v : s), 0);
        expect(x.rowsSentToOthers).toBe(2 * (out + back));
      }
    }
  });

  it('collective numbers: a step\'s all-to-alls count up from ids.exchanges, one each; the averages and the clip use theirs, the clip only with clipNorm (catches numbers counting down into another collective\'s range, a clip run without clipNorm)', async () => {
    const ids = (tags: MessageTag[]) => [...new Set(tags.map((t) => t.collective))].sort((a, b) => a - b);
    const exchanges = MICRO * CONFIG.nLayer * 5;
    const counted = Array.from({ length: exchanges }, (_, i) => IDS.exchanges + i);
    const plain: MessageTag[][] = [];
    await train(room(2, 2, { tags: plain }));
    expect(ids(plain[0])).toEqual([IDS.denseAverage, ...counted].sort((a, b) => a - b));
    const clipped: MessageTag[][] = [];
    await train(room(4, 2, { tags: clipped, clipNorm: 1 }));
    expect(ids(clipped[0])).toEqual([IDS.denseAverage, IDS.expertAverage, IDS.clipNorm, ...counted].sort((a, b) => a - b));
  });

  it('bytes: the dense gradient all-reduced over the room, the experts\' over their replicas only in EP x DP (catches the two averages swapped or skipped)', async () => {
    const ep2 = await train(room(2, 2));
    const epdp = await train(room(4, 2));
    const layout = ep2.models[0].layout;
    const denseLength = layout.entries.filter((e) => !isExpertTensor(e.name)).reduce((s, e) => s + e.length, 0);
    const expertLength = layout.entries.filter((e) => isExpertTensor(e.name)).reduce((s, e) => s + e.length, 0);
    // The same all-reduces on fresh meshes: what each should have sent.
    const sent = async (world: number, length: number) =>
      (await Promise.all(createMemoryMesh(world).map((t) => runAllReduce(t, new Float32Array(length), { round: 0, collective: IDS.denseAverage, average: true })))).map((s) => s.bytesSent);
    expect(ep2.reports[0].map((x) => [x.denseBytesSent, x.expertBytesSent])).toEqual((await sent(2, denseLength)).map((bytes) => [bytes, 0]));
    const replicaBytes = await sent(2, expertLength);
    expect(epdp.reports[0].map((x) => [x.denseBytesSent, x.expertBytesSent])).toEqual((await sent(4, denseLength)).map((bytes, rank) => [bytes, replicaBytes[Math.floor(rank / 2)]]));
    expect(replicaBytes.every((b) => b > 0)).toBe(true);
  });

  it('evaluateBatch: the tabs\' loss sums over their shares add up to the reference\'s over the whole batch (no gradient), and it returns the next free exchange id, three all-to-alls per block as a training forward runs (catches an id range not advanced, or wrong rows)', async () => {
    const world = 2;
    const r = room(world, world);
    const b = new CpuBackend();
    const whole = new Gpt(b, { ...CONFIG, moe: { ...MOE, groups: world } }, world * ROWS);
    whole.init(SEED);
    const batch = roomBatch(7, 0, world);
    const result = whole.forward(batch, 0);
    const refSum = (await b.read(viewOf(result.losses.buf, result.losses.offset, whole.lossRowsOf(batch)))).reduce((s, v) => s + v, 0);
    const first = COLLECTIVE_IDS.expertEvalExchanges.first;
    const end = first + COLLECTIVE_IDS.expertEvalExchanges.count;
    const evals = await Promise.all(r.trainers.map((t, rank) => t.evaluateBatch(tabBatch(7, 0, rank), 0, first, end)));
    expect(Math.abs(evals.reduce((s, e) => s + e.lossSum, 0) / refSum - 1)).toBeLessThan(1e-6);
    expect(evals.map((e) => e.rows)).toEqual([ROWS * CONFIG.blockSize, ROWS * CONFIG.blockSize]);
    const used = 3 * CONFIG.nLayer;
    expect(evals.map((e) => e.nextId)).toEqual([first + used, first + used]);
    // A range too short for the blocks' exchanges is refused with a clear error.
    const short = room(world, world);
    await expect(Promise.all(short.trainers.map((t, rank) => t.evaluateBatch(tabBatch(7, 0, rank), 0, first, first + used - 1)))).rejects.toThrow(
      new RegExp(`a step needs more than ${used - 1} expert all-to-alls`),
    );
  });

  it('refuses a dense GPT, a group whose size does not match the experts held, and an optimizer that holds less than the whole layout', () => {
    const [t] = createMemoryMesh(2);
    const b = new CpuBackend();
    const base = { backend: b, batches: tabBatches(0), experts: t, room: t, ids: IDS };
    const dense = new Gpt(b, { ...CONFIG, moe: undefined }, ROWS);
    expect(() => new ExpertGptTrainer({ ...base, model: dense, optimizer: new Optimizer(b, dense.layout, SGD) })).toThrow(/needs a mixture-of-experts GPT/);
    const all = new Gpt(b, CONFIG, ROWS);
    expect(() => new ExpertGptTrainer({ ...base, model: all, optimizer: new Optimizer(b, all.layout, SGD) })).toThrow(/holds 4 of 4 experts, so its group needs 1 tabs; the transport has 2/);
    const half = new Gpt(b, { ...CONFIG, moe: { ...MOE, held: { first: 0, count: 2 } } }, ROWS);
    expect(() => new ExpertGptTrainer({ ...base, model: half, optimizer: new Optimizer(b, half.layout, SGD, { offset: 0, length: 8 }) })).toThrow(/optimizer must hold the state of the tab's whole layout/);
    const trainer = new ExpertGptTrainer({ ...base, model: half, optimizer: new Optimizer(b, half.layout, SGD) });
    trainer.step = 7;
    expect(trainer.step).toBe(7);
  });
});
