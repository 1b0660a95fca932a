// Checks of collective-choice.ts that mutation testing (npm run mutate) showed missing: its tests drive
// the picker through its main path (a ring that forms, trials, refits), but left unchecked the probes'
// median of an even count and the fan-out's first repetition (which lines the ranks up and must not
// count), which rooms probe the fan-out, the messages' tags, the guards of record() (a fixed choice, a
// room of one, a non-positive time), the caps on kept samples and timing cells (past them a refit's
// record would not fit), a retry only within RETRY_WITHIN, several buckets of one step, the reports'
// predictions for a set part size, runPickedAllReduce's size and timing, and the dashboard's log text.
// Everything runs on vitest's fake clock (clock-test-support.ts), so times are exact.
import { describe, expect, it } from 'vitest';
import { COLLECTIVE_IDS } from '../collective/collective-ids';
import { predictSeconds } from '../collective/cost-model';
import { createMemoryMesh } from '../collective/memory-transport';
import type { AllReduceSchedule } from '../collective/allreduce-algorithms';
import type { MessageTag, Transport } from '../collective/types';
import {
  AUTO_CANDIDATES,
  CollectivePicker,
  encodeSamples,
  linkFitLog,
  probeFanOut,
  probeLink,
  probeRoom,
  RETRY_EVERY,
  runPickedAllReduce,
  TRIAL_REPEATS,
  TRIAL_STEPS,
  type LinkFitReport,
} from './collective-choice';
import { onClock, useFakeClock, WHOLE_MS_RATE } from './clock-test-support';

useFakeClock();

/** A transport whose sends go out `lateMs(tag)` late and are noted in `tags`. */
function shaped(inner: Transport, tags: MessageTag[] = [], lateMs: (tag: MessageTag) => number = () => 0): Transport {
  return {
    rank: inner.rank,
    world: inner.world,
    send: async (to, tag, payload) => {
      tags.push(tag);
      const late = lateMs(tag);
      if (late > 0) await new Promise((resolve) => setTimeout(resolve, late));
      return inner.send(to, tag, payload);
    },
    recv: (from, tag) => inner.recv(from, tag),
  };
}

/** Every rank's pickers for one step of `buckets` buckets of `bytes`; the step's picks (equal on every rank). */
async function pickStep(pickers: CollectivePicker[], step: number, bytes: number, buckets = 1): Promise<AllReduceSchedule[]> {
  const picks: AllReduceSchedule[] = [];
  for (let b = 0; b < buckets; b++) {
    await onClock(Promise.all(pickers.map((p) => p.beforeBucket(step))));
    const all = pickers.map((p) => p.pick(bytes));
    expect(new Set(all).size).toBe(1);
    picks.push(all[0]);
  }
  return picks;
}

describe('the probes', () => {
  it('an even number of repetitions: the mean of the two middle round trips (trips 10, 0, 2 and 6 ms late: one-way 21 + 4 / 2 ms)', async () => {
    const lateMs = [10, 0, 2, 6];
    let sent = 0;
    const mesh = createMemoryMesh(3, { latencyMs: 20, bytesPerSec: WHOLE_MS_RATE });
    const late = shaped(mesh[0], [], (tag) => (tag.chunk % 2 === 0 ? lateMs[sent++ % lateMs.length] : 0));
    const [samples] = await onClock(Promise.all([probeLink(late, 0, [256], 4), probeLink(mesh[1], 0, [256], 4), probeLink(mesh[2], 0, [256], 4)]));
    expect(samples[0].seconds).toBeCloseTo((21 + (2 + 6) / 4) / 1000, 12);
  });

  it("the fan-out's first repetition lines the ranks up and is not counted: rank 3 starts 30 ms late, rank 0 still measures 10 + 1 ms", async () => {
    const mesh = createMemoryMesh(4, { latencyMs: 10, bytesPerSec: WHOLE_MS_RATE });
    const started = mesh.map((t) => (t.rank === 3 ? new Promise<void>((resolve) => setTimeout(resolve, 30)).then(() => probeFanOut(t, 0, [256], 1)) : probeFanOut(t, 0, [256], 1)));
    const samples = await onClock(Promise.all(started));
    expect(samples[0][0].seconds).toBeCloseTo(0.011, 12);
  });

  it('a fan-out of a size that is not a multiple of 4 sends whole floats (258 B: 256 on each link)', async () => {
    const mesh = createMemoryMesh(3, { latencyMs: 10, bytesPerSec: WHOLE_MS_RATE });
    const samples = await onClock(Promise.all(mesh.map((t) => probeFanOut(t, 0, [258], 1))));
    expect(samples[0][0]).toMatchObject({ linkBytes: 256, receivedBytes: 512 });
  });

  it('every probe and agreement message carries its own collective id, the round it was asked for and a chunk number >= 0, unique per sender, receiver and round', async () => {
    const tags: MessageTag[][] = [[], [], []];
    const mesh = createMemoryMesh(3, { latencyMs: 5, bytesPerSec: WHOLE_MS_RATE }).map((t, rank) => shaped(t, tags[rank]));
    const pickers = mesh.map((transport) => new CollectivePicker({ choice: 'auto', transport }));
    await onClock(Promise.all(pickers.map((p) => p.beforeBucket(7))));
    for (const sent of tags) {
      expect(new Set(sent.map((t) => t.round))).toEqual(new Set([7]));
      expect(new Set(sent.map((t) => t.collective))).toEqual(new Set([COLLECTIVE_IDS.linkProbe.first, COLLECTIVE_IDS.linkFit.first]));
      expect(sent.every((t) => Number.isSafeInteger(t.chunk) && t.chunk >= 0)).toBe(true);
    }
  });

  it('a room of 2 probes the ping-pong only (the fan-out is the same link), a room of 3 the fan-out too', async () => {
    for (const [world, samples] of [[2, 2], [3, 4]] as const) {
      const mesh = createMemoryMesh(world, { latencyMs: 5, bytesPerSec: WHOLE_MS_RATE });
      const probes = await onClock(Promise.all(mesh.map((t) => probeRoom(t, 0))));
      expect(probes.map((p) => p.length)).toEqual(mesh.map(() => samples));
    }
  });

  it("a rank's samples that do not fit their record are refused naming them", () => {
    expect(() => encodeSamples([{ rounds: 1, linkBytes: 1, receivedBytes: 1, seconds: 1 }], 0)).toThrow(/^1 samples do not fit a record of 0$/);
  });
});

describe('CollectivePicker: guards and caps', () => {
  it('a room of one: auto waits for nothing, probes nothing and picks the ring; record() keeps nothing', async () => {
    const [transport] = createMemoryMesh(1);
    const picker = new CollectivePicker({ choice: 'auto', transport });
    await picker.beforeBucket(0);
    expect([picker.pick(1 << 20), picker.agreed]).toEqual(['ring', null]);
    picker.record('ring', 64, 0.01);
    expect(picker.usageSoFar()).toEqual([]);
  });

  it('record() keeps nothing for a fixed choice or a time that is not positive; a room of 2 forms a fit from the ping-pong and counts its buckets', async () => {
    const mesh = createMemoryMesh(2, { latencyMs: 5, bytesPerSec: WHOLE_MS_RATE });
    const fixed = new CollectivePicker({ choice: 'tree', transport: mesh[0] });
    fixed.record('tree', 64, 0.01);
    expect(fixed.usageSoFar()).toEqual([]);
    const pickers = mesh.map((transport) => new CollectivePicker({ choice: 'auto', transport }));
    await onClock(Promise.all(pickers.map((p) => p.beforeBucket(0))));
    expect(pickers[0].agreed!.samples).toBe(2 * 2);
    pickers[0].record('ring', 64, 0);
    pickers[0].record('ring', 64, Number.NaN);
    pickers[0].record('ring', 64, 0.01);
    expect(pickers[0].usageSoFar()).toEqual([{ bytes: 64, algorithm: 'ring', buckets: 1 }]);
  });

  it('a rank keeps its newest 64 training samples (70 recorded in a step, the refit fits probes + 64 per rank) and its 16 most recently timed cells (20 timed in a step), so that its refit record fits', async () => {
    const mesh = createMemoryMesh(2, { latencyMs: 5, bytesPerSec: WHOLE_MS_RATE });
    const reports: LinkFitReport[][] = [[], []];
    const pickers = mesh.map((transport, rank) => new CollectivePicker({ choice: 'auto', transport, refitEvery: 2, partBytes: 4096, onFit: (r) => reports[rank].push(r) }));
    await pickStep(pickers, 0, 1024);
    // The step the ring formed at runs no trial: every bucket is timed in its own (size class, algorithm) cell.
    for (const p of pickers) {
      for (let i = 0; i < 70; i++) p.record(AUTO_CANDIDATES[i % 4], 1 << (4 + (Math.floor(i / 4) % 5)), 0.001 * (1 + (i % 7)));
      p.endStep(0);
    }
    await pickStep(pickers, 1, 1024);
    pickers.forEach((p) => p.endStep(1));
    await pickStep(pickers, 2, 1024);
    const fit = pickers[0].agreed!;
    expect(fit.samples).toBe(2 * (2 + 64));
    const refit = reports[0].at(-1)!;
    expect(refit.kind).toBe('refit');
    expect(refit.measured).toHaveLength(16);
    // Each cell's prediction is the new fit's for its size, at the picker's part size.
    for (const m of refit.measured!) expect(m.predictedMs).toBeCloseTo(1000 * predictSeconds(m.algorithm as AllReduceSchedule, 2, m.bytes, fit, 4096), 9);
  });
});

describe('CollectivePicker: trials and retries', () => {
  it('two buckets a step run the same trial turn (the step counts once), and a runner-up 2x slower than the fastest is never retried', async () => {
    const mesh = createMemoryMesh(4, { latencyMs: 5, bytesPerSec: WHOLE_MS_RATE });
    const pickers = mesh.map((transport) => new CollectivePicker({ choice: 'auto', transport, refitEvery: 10, trialWithin: Infinity }));
    const bytes = 1 << 18;
    const picked: AllReduceSchedule[] = [];
    let truth: Record<string, number> | undefined;
    for (let step = 0; step <= TRIAL_STEPS + RETRY_EVERY; step++) {
      const picks = await pickStep(pickers, step, bytes, 2);
      expect(picks[1]).toBe(picks[0]);
      picked.push(picks[0]);
      // The model's pick is the slowest; the others 0.1, 0.2 and 0.3 s (the runner-up outside RETRY_WITHIN),
      // the fastest not the ring, so that the ring's score (the first) is not the chosen one's.
      truth ??= Object.fromEntries([...AUTO_CANDIDATES.filter((a) => a !== picks[0]).reverse(), picks[0]].map((a, i) => [a, 0.1 * (i + 1)]));
      for (const p of pickers) {
        p.record(picks[0], bytes, truth[picks[0]] / 2);
        p.record(picks[1], bytes, truth[picks[1]]);
        p.endStep(step);
      }
    }
    const fastest = AUTO_CANDIDATES.find((a) => truth![a] === 0.1)!;
    expect(picked.slice(1, 1 + TRIAL_STEPS)).toEqual(Array.from({ length: TRIAL_REPEATS }, () => AUTO_CANDIDATES).flat());
    expect(picked.slice(1 + TRIAL_STEPS)).toEqual(Array.from({ length: RETRY_EVERY }, () => fastest));
  });

  it("a cell keeps its newest 3 timings: the model's pick timed on 10 steps after the trials counts 3 per rank at the next refit", async () => {
    const mesh = createMemoryMesh(4, { latencyMs: 5, bytesPerSec: WHOLE_MS_RATE });
    const reports: LinkFitReport[] = [];
    const pickers = mesh.map((transport, rank) => new CollectivePicker({ choice: 'auto', transport, refitEvery: 20, trialWithin: 1, ...(rank === 0 && { onFit: (r: LinkFitReport) => reports.push(r) }) }));
    const bytes = 1 << 18;
    for (let step = 0; step < 21; step++) {
      const [pick] = await pickStep(pickers, step, bytes);
      for (const p of pickers) {
        p.record(pick, bytes, 0.05);
        p.endStep(step);
      }
    }
    const last = reports.at(-1)!;
    expect([last.kind, last.step]).toEqual(['refit', 19]);
    expect(last.measured!.map((m) => m.samples)).toEqual([4 * 3]);
  });
});

describe('reports and runPickedAllReduce', () => {
  it("a picker without onFit forms; with partBytes 4096 the formed report's predictions are the cost model's at that part size, sourced from the model", async () => {
    const mesh = createMemoryMesh(3, { latencyMs: 5, bytesPerSec: WHOLE_MS_RATE });
    const reports: LinkFitReport[] = [];
    const pickers = mesh.map((transport, rank) => new CollectivePicker({ choice: 'auto', transport, partBytes: 4096, ...(rank === 0 && { onFit: (r: LinkFitReport) => reports.push(r) }) }));
    await onClock(Promise.all(pickers.map((p) => p.beforeBucket(0))));
    const fit = pickers[0].agreed!;
    for (const pick of reports[0].picks) {
      expect(pick.source).toBe('model');
      for (const a of AUTO_CANDIDATES) expect(pick.predictedMs[a]).toBeCloseTo(1000 * predictSeconds(a, 3, pick.bytes, fit, 4096), 9);
    }
    // 256 KiB in parts of 4 KiB: 64 parts a round, so the part size shows in the ring's prediction.
    expect(pickers[1].pick(1 << 18)).toBe(pickers[0].pick(1 << 18));
    expect(predictSeconds('ring', 3, 1 << 18, fit, 4096)).not.toBeCloseTo(predictSeconds('ring', 3, 1 << 18, fit), 6);
  });

  it('runPickedAllReduce averages in place, counts the bucket at its size on the wire (f16: 2 bytes a value) and times it from the pick to the end on the clock', async () => {
    const mesh = createMemoryMesh(3, { latencyMs: 5, bytesPerSec: WHOLE_MS_RATE });
    const reports: LinkFitReport[] = [];
    const pickers = mesh.map((transport, rank) => new CollectivePicker({ choice: 'auto', transport, refitEvery: 2, ...(rank === 0 && { onFit: (r: LinkFitReport) => reports.push(r) }) }));
    await onClock(Promise.all(pickers.map((p) => p.beforeBucket(0))));
    pickers.forEach((p) => p.endStep(0));
    const data = mesh.map((_, rank) => Float32Array.from({ length: 256 }, (_, i) => (rank + 1) * (i % 8)));
    const t0 = performance.now();
    await onClock(Promise.all(mesh.map((t, rank) => runPickedAllReduce(pickers[rank], t, data[rank], { round: 1, collective: COLLECTIVE_IDS.gradientBuckets.first, average: true, wire: 'f16' }))));
    const elapsedMs = performance.now() - t0;
    expect(Array.from(data[0])).toEqual(Array.from({ length: 256 }, (_, i) => 2 * (i % 8)));
    expect(pickers[0].usageSoFar()).toEqual([{ bytes: 512, algorithm: pickers[0].pick(512), buckets: 1 }]);
    pickers.forEach((p) => p.endStep(1));
    await onClock(Promise.all(pickers.map((p) => p.beforeBucket(2))));
    const [bucket] = reports.at(-1)!.buckets;
    expect(bucket.bytes).toBe(512);
    expect(elapsedMs).toBeGreaterThan(0);
    expect(bucket.measuredMs).toBeCloseTo(elapsedMs, 9);
  });

  it('linkFitLog: the exact text of a refit (sizes in B, KiB, MiB from exactly 1 KiB and 1 MiB; milliseconds with 2 decimals below 10, 1 from 10; rates in MB/s) and of a formed fit (beta inf, gamma 0)', () => {
    const refit: LinkFitReport = {
      kind: 'refit',
      step: 4,
      world: 4,
      link: { alpha: 0.0123, beta: 2e-7, gamma: 4e-7 },
      rmsRelativeError: 0.1,
      samples: 8,
      buckets: [{ bytes: 1 << 20, algorithm: 'ring', predictedMs: 9.5, measuredMs: 10 }],
      picks: [
        { bytes: 1024, algorithm: 'naive', predictedMs: { ring: 3.25, naive: 1.5 }, latencyBoundMs: 1, measuredMs: { naive: 1.25 } },
        { bytes: 512, algorithm: 'tree', predictedMs: { tree: 20 }, latencyBoundMs: 1 },
      ],
    };
    expect(linkFitLog(refit)).toEqual({
      type: 'log',
      level: 'info',
      t: expect.any(Number),
      message:
        'collective=auto, refit after step 5: alpha 12.3 ms, beta 5.00 MB/s per link, gamma 2.50 MB/s per rank; 1.0 MiB by ring: predicted 9.50 ms, measured 10.0 ms; ' +
        '1.0 KiB: naive (naive 1.25 ms measured; ring 3.25, naive 1.50 ms predicted); 512 B: tree (tree 20.0 ms predicted)',
    });
    const formed: LinkFitReport = { ...refit, kind: 'formed', step: 0, link: { alpha: 0.002, beta: 0, gamma: 0 }, buckets: [], picks: [{ bytes: 3 << 20, algorithm: 'rhd', predictedMs: { rhd: 100 }, latencyBoundMs: 1 }] };
    const log = linkFitLog(formed);
    expect(log.type === 'log' && log.message).toBe('collective=auto, links probed: alpha 2.00 ms, beta inf MB/s per link, gamma 0; 3.0 MiB: rhd (rhd 100.0 ms predicted)');
  });
});
