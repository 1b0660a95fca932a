// The per-bucket all-reduce picker: the ping-pong measures a link's alpha and beta and the fan-out the
// cost of receiving at once (an in-memory mesh with a set delay and rate), every rank agrees on one fit
// and so picks alike, the cost model's choice follows the message size, and refits are agreed by the room;
// trials time the alternatives and the room's measured medians correct a model that is wrong.
//
// Every test runs on vitest's fake clock (clock-test-support.ts): the mesh's delays and the probes'
// timings are the clock's, so a measured time is what the links' latency and rate make it, exactly,
// however loaded the machine.
import { describe, expect, it } from 'vitest';
import { createMemoryMesh } from '../collective/memory-transport';
import { runAllReduceBy, type AllReduceSchedule } from '../collective/allreduce-algorithms';
import { COLLECTIVE_IDS } from '../collective/collective-ids';
import { costTerms, pickFastest, type CostSample } from '../collective/cost-model';
import type { Transport } from '../collective/types';
import { AUTO_CANDIDATES, CollectivePicker, decodeSamples, encodeSamples, linkFitLog, PROBE_REPEATS, PROBE_SIZES, probeFanOut, probeLink, RETRY_EVERY, roomFit, TRIAL_REPEATS, TRIAL_STEPS, type LinkFitReport } from './collective-choice';
import { onClock, useFakeClock, WHOLE_MS_RATE } from './clock-test-support';

useFakeClock();

describe('probeLink', () => {
  it('20 ms links at 256 kB/s: one-way time exactly 20 + 1 ms for 256 B and 20 + 1024 ms for 256 KiB on every rank, so alpha is 20 ms and 1/beta 256 kB/s exactly', async () => {
    const mesh = createMemoryMesh(3, { latencyMs: 20, bytesPerSec: WHOLE_MS_RATE });
    const samples = await onClock(Promise.all(mesh.map((t) => probeLink(t, 0))));
    expect(PROBE_SIZES).toEqual([256, 256 * 1024]);
    for (const [small, large] of samples) {
      expect([small.rounds, small.linkBytes, small.receivedBytes]).toEqual([1, 256, 256]);
      expect([large.rounds, large.linkBytes, large.receivedBytes]).toEqual([1, 262144, 262144]);
      expect(small.seconds).toBeCloseTo(0.021, 12);
      expect(large.seconds).toBeCloseTo(1.044, 12);
      const beta = (large.seconds - small.seconds) / (large.linkBytes - small.linkBytes);
      expect(1 / beta).toBeCloseTo(WHOLE_MS_RATE, 3);
      expect(small.seconds - 256 * beta).toBeCloseTo(0.02, 12);
    }
    for (const t of mesh) expect(t.pendingMessages).toBe(0);
  });

  it('the median round trip counts, not the fastest, the slowest nor the mean: trips 0, 10, 4, 2 and 6 ms late measure the 4 ms late one (one-way 23 ms for 256 B, 1046 ms for 256 KiB)', async () => {
    // Rank 0's pings of each size go out late by these milliseconds, in turn. Three ranks, so that its
    // pings (to rank 1) and its echoes (to rank 2) do not share a link.
    const lateMs = [0, 10, 4, 2, 6];
    const mesh = createMemoryMesh(3, { latencyMs: 20, bytesPerSec: WHOLE_MS_RATE });
    let sent = 0;
    const late: Transport = {
      rank: 0,
      world: 3,
      send: async (to, tag, payload) => {
        const late = tag.chunk % 2 === 0 ? lateMs[sent++ % PROBE_REPEATS] : 0;
        if (late > 0) await new Promise((resolve) => setTimeout(resolve, late));
        return mesh[0].send(to, tag, payload);
      },
      recv: (from, tag) => mesh[0].recv(from, tag),
    };
    const [samples] = await onClock(Promise.all([probeLink(late, 0), probeLink(mesh[1], 0), probeLink(mesh[2], 0)]));
    expect(lateMs).toHaveLength(PROBE_REPEATS);
    expect(samples.map((s) => s.seconds)).toEqual([expect.closeTo(0.023, 12), expect.closeTo(1.046, 12)]);
  });
});

describe('probeFanOut', () => {
  it('4 ranks over 10 ms links at 256 kB/s: one round, each size on every link, 3 sizes received; exactly one latency plus the size at the link rate (11 ms for 256 B, 266 ms for 64 KiB)', async () => {
    const mesh = createMemoryMesh(4, { latencyMs: 10, bytesPerSec: WHOLE_MS_RATE });
    const samples = await onClock(Promise.all(mesh.map((t) => probeFanOut(t, 0, [256, 64 * 1024], 3))));
    for (const [small, large] of samples) {
      expect([small.rounds, small.linkBytes, small.receivedBytes]).toEqual([1, 256, 3 * 256]);
      expect([large.rounds, large.linkBytes, large.receivedBytes]).toEqual([1, 65536, 3 * 65536]);
      // The links to the 3 peers are separate: they serialise at once, so one size costs 10 ms + size / rate, not 3 x size / rate.
      expect(small.seconds).toBeCloseTo(0.011, 12);
      expect(large.seconds).toBeCloseTo(0.266, 12);
    }
    for (const t of mesh) expect(t.pendingMessages).toBe(0);
  });
});

describe('the room agrees on one fit', () => {
  it('a rank\'s samples survive the fixed-size record bit for bit, and a record that lies about its count is refused', () => {
    const samples: CostSample[] = [
      { ...costTerms('naive', 4, 4096), seconds: 0.0061 },
      { rounds: 1, linkBytes: 256, receivedBytes: 256, seconds: 0.00523 },
    ];
    expect(decodeSamples(encodeSamples(samples, 5))).toEqual(samples);
    expect(() => encodeSamples(samples, 1)).toThrow(/do not fit/);
    const lying = encodeSamples(samples, 2);
    new Float64Array(lying.buffer)[0] = 3;
    expect(() => decodeSamples(lying)).toThrow(/claims 3 samples/);
  });

  it('every rank fitting the gathered samples in rank order gets the same bits', () => {
    const perRank = [0, 1, 2].map((rank) => [
      { rounds: 1, linkBytes: 256, receivedBytes: 256, seconds: 0.005 + rank * 1e-4 },
      { rounds: 1, linkBytes: 262144, receivedBytes: 262144, seconds: 0.018 + rank * 1e-3 },
      { rounds: 1, linkBytes: 262144, receivedBytes: 2 * 262144, seconds: 0.025 + rank * 1e-3 },
    ]);
    const fits = [0, 1, 2].map(() => roomFit(perRank.map((s) => s.map((x) => ({ ...x })))));
    expect(fits[1]).toEqual(fits[0]);
    expect(fits[2]).toEqual(fits[0]);
    expect(fits[0].gamma).toBeGreaterThan(0);
  });
});

describe('CollectivePicker', () => {
  it('a fixed choice is used for every size, with no probe', async () => {
    const [t] = createMemoryMesh(2);
    const picker = new CollectivePicker({ choice: 'tree', transport: t });
    await picker.beforeBucket(0);
    expect([picker.pick(64), picker.pick(1 << 24), picker.agreed]).toEqual(['tree', 'tree', null]);
    expect(() => new CollectivePicker({ choice: 'star' as 'ring', transport: t })).toThrow(/collective must be one of auto, ring, tree, rhd, naive/);
  });

  it('auto, 5 ranks over 20 ms links: every rank holds the same fit and picks alike; 4 KiB goes to naive (one round); refits are agreed', async () => {
    const mesh = createMemoryMesh(5, { latencyMs: 20, bytesPerSec: 5e6 });
    const reports: LinkFitReport[][] = mesh.map(() => []);
    const pickers = mesh.map((transport, rank) => new CollectivePicker({ choice: 'auto', transport, refitEvery: 2, onFit: (r) => reports[rank].push(r) }));
    await onClock(Promise.all(pickers.map((p) => p.beforeBucket(0))));
    const fit = pickers[0].agreed!;
    for (const p of pickers) expect(p.agreed).toEqual(fit);
    for (const bytes of [256, 4096, 1 << 22]) expect(new Set(pickers.map((p) => p.pick(bytes))).size).toBe(1);
    // 4 KiB: naive is one latency (20 ms) where the ring takes 8 and rhd 6. 4 MiB: naive's links carry
    // 4 MiB (0.84 s at 5 MB/s), the ring's 1.6 x 4 MiB in 8 + parts rounds but each rank receives 4
    // times less; which wins depends on the fitted gamma, so only the agreement is asserted there.
    expect(pickers[0].pick(4096)).toBe('naive');
    expect(fit.samples).toBe(5 * 4); // ping-pong and fan-out, two sizes each, from every rank
    expect(reports.map((r) => r[0].kind)).toEqual(mesh.map(() => 'formed'));
    expect(reports[0][0].picks[0]).toMatchObject({ bytes: 256, algorithm: 'naive' });
    expect(reports[0][0].picks[0].latencyBoundMs).toBeCloseTo(fit.alpha * 1000, 9);
    const log = linkFitLog(reports[0][0]);
    expect(log.type === 'log' && log.message).toMatch(
      /^collective=auto, links probed: alpha [\d.]+ ms, beta [\d.]+ MB\/s per link, gamma ([\d.]+ MB\/s per rank|0); 256 B: naive \(ring [\d.]+, tree [\d.]+, rhd [\d.]+, naive [\d.]+ ms predicted\)/,
    );
    // Training samples (buckets slower than predicted, each rank differently) move the next agreed fit on every rank alike.
    const naiveSeconds = (bytes: number) => fit.alpha + bytes * fit.beta + 4 * bytes * fit.gamma;
    for (const [rank, p] of pickers.entries()) {
      p.record('naive', 1 << 16, 2 * naiveSeconds(1 << 16));
      p.endStep(0);
      p.record('naive', 1 << 16, (2 + rank) * naiveSeconds(1 << 16));
      p.endStep(1);
    }
    await onClock(Promise.all(pickers.map((p) => p.beforeBucket(2))));
    expect(reports.map((r) => r.length)).toEqual(mesh.map(() => 2));
    for (const p of pickers) expect(p.agreed).toEqual(pickers[0].agreed);
    expect(pickers[0].agreed!.samples).toBe(5 * 4 + 5 * 2);
    expect(predictSecondsOf(pickers[0].agreed!, 1 << 16)).toBeGreaterThan(predictSecondsOf(fit, 1 << 16));
    // The refit after step 2 shows that step's bucket: rank 0 measured twice the formed fit's prediction.
    expect(reports[0][1].buckets).toHaveLength(1);
    expect(reports[0][1].buckets[0]).toMatchObject({ bytes: 1 << 16, algorithm: 'naive' });
    expect(reports[0][1].buckets[0].measuredMs).toBeCloseTo(2000 * naiveSeconds(1 << 16), 9);
    expect(reports[0][1].buckets[0].predictedMs).toBeCloseTo(1000 * naiveSeconds(1 << 16), 9);
  });
});

/** The naive all-reduce's predicted seconds over 5 ranks on a fit. */
function predictSecondsOf(link: { alpha: number; beta: number; gamma: number }, bytes: number): number {
  return link.alpha + bytes * link.beta + 4 * bytes * link.gamma;
}

/** Every rank's picker calls for one step, as the data-parallel sync makes them; returns the step's pick (asserted equal on every rank). */
async function pickStep(pickers: CollectivePicker[], step: number, bytes: number): Promise<AllReduceSchedule> {
  await onClock(Promise.all(pickers.map((p) => p.beforeBucket(step))));
  const picks = pickers.map((p) => p.pick(bytes));
  expect(new Set(picks).size, `step ${step}: ${picks.join(', ')}`).toBe(1);
  return picks[0];
}

describe('collective=auto corrects the model from measured times', () => {
  it('exact: ranks time the model\'s pick at 0.3 s, rhd 0.1 (ring if the model picks rhd), the others 0.12 and 0.2 (1% apart per rank); trials run every algorithm in turn (the model\'s pick also at the step the ring formed), then every rank picks the fastest, and halfway between refits the closest competitor once', async () => {
    const mesh = createMemoryMesh(4, { latencyMs: 5, bytesPerSec: 20e6 });
    const reports: LinkFitReport[][] = mesh.map(() => []);
    const pickers = mesh.map((transport, rank) => new CollectivePicker({ choice: 'auto', transport, refitEvery: 10, trialWithin: Infinity, onFit: (r) => reports[rank].push(r) }));
    const bytes = 1 << 18;
    const picked: AllReduceSchedule[] = [];
    let truth: Record<AllReduceSchedule, number> | undefined;
    let fastest: AllReduceSchedule = 'rhd';
    for (let step = 0; step <= TRIAL_STEPS + RETRY_EVERY; step++) {
      const algorithm = await pickStep(pickers, step, bytes);
      picked.push(algorithm);
      if (!truth) {
        // The model's pick (step 0, the ring just formed) is made the slowest, whatever the fit says.
        fastest = algorithm === 'rhd' ? 'ring' : 'rhd';
        const others = AUTO_CANDIDATES.filter((a) => a !== algorithm && a !== fastest);
        truth = { [algorithm]: 0.3, [fastest]: 0.1, [others[0]]: 0.12, [others[1]]: 0.2 } as Record<AllReduceSchedule, number>;
      }
      pickers.forEach((p, rank) => p.record(algorithm, 3 * bytes, truth![algorithm] * (1 + 0.01 * rank), bytes));
      pickers.forEach((p) => p.endStep(step));
    }
    // The step the ring formed at ran the model's pick.
    const model = picked[0];
    expect(model).toBe(pickFastest(4, bytes, reports[0][0].link, AUTO_CANDIDATES).algorithm);
    const turns = AUTO_CANDIDATES;
    expect(picked.slice(0, 1 + TRIAL_STEPS)).toEqual([model, ...Array.from({ length: TRIAL_REPEATS }, () => turns).flat()]);
    // After the trials the fastest, but halfway between refits the closest competitor again (0.12 s, within RETRY_WITHIN of 0.1 s).
    const runnerUp = AUTO_CANDIDATES.find((a) => truth![a] === 0.12)!;
    expect(picked.slice(1 + TRIAL_STEPS)).toEqual(Array.from({ length: RETRY_EVERY }, (_, i) => (i + 1 === RETRY_EVERY / 2 ? runnerUp : fastest)));
    for (const p of pickers) expect(p.measured).toEqual(pickers[0].measured);
    // The refit when the trials end: every algorithm measured by every rank, the model's pick also at the step the ring formed.
    const refit = reports[0].find((r) => r.kind === 'refit')!;
    expect(refit.step).toBe(TRIAL_STEPS);
    expect(refit.measured!.map((m) => [m.algorithm, m.samples])).toEqual(AUTO_CANDIDATES.map((a) => [a, 4 * (TRIAL_REPEATS + (a === model ? 1 : 0))]));
    expect(refit.measured!.find((m) => m.algorithm === fastest)!.measuredMs).toBeCloseTo(1000 * 0.1 * 1.015, 9);
    expect(refit.picks).toEqual([expect.objectContaining({ bytes, algorithm: fastest, source: 'measured' })]);
    expect(refit.usage).toEqual(expect.arrayContaining(turns.map((a) => ({ bytes, algorithm: a, buckets: TRIAL_REPEATS + (a === model ? 1 : 0) }))));
    const log = linkFitLog(refit);
    const measuredText = AUTO_CANDIDATES.map((a) => `${a} ${(1000 * truth![a] * 1.015).toFixed(1)}`).join(', ');
    expect(log.type === 'log' && log.message).toContain(`256.0 KiB: ${fastest} (${measuredText} ms measured; ring `);
  });

  it('a trial step times only the buckets that ran its turn: a size no alternative is plausible for runs the model\'s pick on every trial step, and is timed only on the steps whose turn is that pick (not credited with the other turns\' spans)', async () => {
    const mesh = createMemoryMesh(4, { latencyMs: 5, bytesPerSec: 20e6 });
    const reports: LinkFitReport[][] = mesh.map(() => []);
    // trialWithin 1: no alternative is plausible, so every trial step runs the model's pick.
    const pickers = mesh.map((transport, rank) => new CollectivePicker({ choice: 'auto', transport, refitEvery: 10, trialWithin: 1, onFit: (r) => reports[rank].push(r) }));
    const bytes = 1 << 18;
    const picked: AllReduceSchedule[] = [];
    // One step past the trials: its first bucket waits for the refit the trials' end started.
    for (let step = 0; step <= TRIAL_STEPS + 1; step++) {
      const algorithm = await pickStep(pickers, step, bytes);
      picked.push(algorithm);
      // Its own time is 50 ms; on a trial step of another turn the step's span is that turn's (500 ms).
      const turn = step >= 1 && step <= TRIAL_STEPS ? AUTO_CANDIDATES[(step - 1) % AUTO_CANDIDATES.length] : undefined;
      pickers.forEach((p) => p.record(algorithm, bytes, turn === undefined || turn === algorithm ? 0.05 : 0.5));
      pickers.forEach((p) => p.endStep(step));
    }
    expect(new Set(picked).size).toBe(1);
    const refit = reports[0].find((r) => r.kind === 'refit')!;
    expect(refit.step).toBe(TRIAL_STEPS);
    // Timed at the step the ring formed and on the trial steps whose turn it is, by every rank: not on all 8.
    expect(refit.measured!.map((m) => [m.algorithm, m.samples])).toEqual([[picked[0], 4 * (1 + TRIAL_REPEATS)]]);
    expect(refit.measured![0].measuredMs).toBeCloseTo(50, 6);
  });

  it('shaped links, 4 ranks over 20 ms and 5 MB/s; naive\'s messages 300 ms late, ring\'s and tree\'s 30 ms each (the probes see none of it): the model picks naive, auto ends on rhd, the fastest by over 100 ms; replicas bitwise equal after every step', async () => {
    const mesh = createMemoryMesh(4, { latencyMs: 20, bytesPerSec: 5e6 });
    // Each algorithm's messages travel under their own collective id, so the links can delay them apart.
    const idOf = (a: AllReduceSchedule) => COLLECTIVE_IDS.gradientBuckets.first + AUTO_CANDIDATES.indexOf(a);
    const lateMs = new Map([[idOf('naive'), 300], [idOf('ring'), 30], [idOf('tree'), 30]]);
    const slowed = mesh.map((t): Transport => ({
      rank: t.rank,
      world: t.world,
      send: async (to, tag, payload) => {
        const late = lateMs.get(tag.collective);
        if (!late) return t.send(to, tag, payload);
        const copy = payload.slice();
        await new Promise((resolve) => setTimeout(resolve, late));
        return t.send(to, tag, copy);
      },
      recv: (from, tag) => t.recv(from, tag),
    }));
    const reports: LinkFitReport[][] = mesh.map(() => []);
    const pickers = slowed.map((transport, rank) => new CollectivePicker({ choice: 'auto', transport, refitEvery: 10, onFit: (r) => reports[rank].push(r) }));
    // 256 KiB: rhd ~ 4 x 20 ms + 1.5 x 256 KiB at 5 MB/s = 159 ms; ring ~ 199 + 6 x 30 ms, tree ~ 231 + 5 x 30 ms, naive ~ 72 + 300 ms.
    const length = 1 << 16;
    const bytes = 4 * length;
    const data = mesh.map((_, rank) => Float32Array.from({ length }, (_, i) => Math.sin(i * 0.37 + rank) * (rank + 1)));
    const picked: AllReduceSchedule[] = [];
    for (let step = 0; step < TRIAL_STEPS + 3; step++) {
      const algorithm = await pickStep(pickers, step, bytes);
      picked.push(algorithm);
      const opts = { round: step, collective: idOf(algorithm), average: true };
      await onClock(
        Promise.all(
          slowed.map(async (t, rank) => {
            const t0 = performance.now();
            await runAllReduceBy(algorithm, t, data[rank], opts);
            pickers[rank].record(algorithm, bytes, (performance.now() - t0) / 1000);
          }),
        ),
      );
      // Bitwise equal (Buffer.equals: a deep toEqual over 1 MiB per rank would take seconds).
      expect(data.map((d) => Buffer.from(d.buffer).equals(Buffer.from(data[0].buffer)))).toEqual(data.map(() => true));
      pickers.forEach((p) => p.endStep(step));
    }
    expect(picked[0]).toBe('naive');
    expect(picked.slice(1 + TRIAL_STEPS)).toEqual(['rhd', 'rhd']);
    const measured = reports[0].at(-1)!.measured!;
    // The measured time holds the 300 ms the links add to naive's messages. (Not compared with the
    // prediction: the refits fit the bucket timings too, so naive's slow steps raise its prediction.)
    const naive = measured.find((m) => m.algorithm === 'naive')!;
    expect(naive.measuredMs).toBeGreaterThan(300);
    const rhd = measured.find((m) => m.algorithm === 'rhd')!;
    for (const m of measured) if (m !== rhd) expect(m.measuredMs - rhd.measuredMs).toBeGreaterThan(100);
    for (const t of mesh) expect(t.pendingMessages).toBe(0);
  });
});
