// Every all-reduce algorithm (ring, tree, rhd, naive) against the cost model's prediction, per message
// size and room size, what `collective=auto` picks, and the issue's two goals (npm run bench:collectives).
//
// The links are the in-memory transport's (src/collective/memory-transport.ts) with a set one-way
// latency and rate per directed link (each link its own queue, as the lab's link shaping does), so the
// physics is known and the same in every run; real WebRTC links between tabs are bench/ring.ts's
// subject. All ranks run in this one Node thread, so what each rank does with the bytes it receives
// (copy, sum) costs the others' time too: the model's gamma term, which the fan-out probe measures.
//
// In the same run, per room size: the room is probed exactly as the lab probes it when a ring forms
// (src/parallel/collective-choice.ts probeRoom: the ping-pong and the fan-out), the room's fit
// (alpha, beta, gamma) is made from those samples alone (roomFit), and each algorithm's measured median
// over the repetitions (with its [min..max]) is printed beside its prediction. A repetition's time is
// the slowest rank's; repetitions interleave the algorithms, so drift in the machine's load hits all
// alike, and one more repetition before them warms each cell up uncounted. "model" is the algorithm the
// probes' fit picks (what the lab's picker runs until it has measured); "auto" is the lab's picker itself
// (CollectivePicker over the same links, run through runPickedAllReduce as PowerSGD and DiLoCo run it):
// it probes, runs its trial steps (each step all-reduces every size once), agrees on their timings, and
// then takes its turn in every repetition beside the fixed algorithms, picking from measured times
// where it has them. auto/best is its measured median over the fastest fixed algorithm's; "lat" is
// auto's measured median over its latency bound (its pick's rounds x the set one-way latency; "lat
// fit": x the fitted alpha).
// Goals (issue 19): auto/best <= 1.10 everywhere, and at 4 KiB lat <= 1.5.
//
// Options: --tabs 2,4,8  --sizes 4096,65536,1048576  --reps 5  --latency 5 (ms)  --bandwidth 20 (MB/s)
// Prints tables on stdout, then one line of JSON.
import { ALL_REDUCE_SCHEDULES, runAllReduceBy, type AllReduceSchedule } from '../src/collective/allreduce-algorithms';
import { costTerms, pickFastest, predictSeconds } from '../src/collective/cost-model';
import { createMemoryMesh } from '../src/collective/memory-transport';
import { AUTO_CANDIDATES, CollectivePicker, probeRoom, roomFit, runPickedAllReduce, TRIAL_STEPS } from '../src/parallel/collective-choice';

function option(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 && process.argv[at + 1] ? process.argv[at + 1] : fallback;
}
const numbers = (raw: string) => raw.split(',').map(Number);

const TABS = numbers(option('tabs', '2,4,8'));
const SIZES = numbers(option('sizes', '4096,65536,1048576'));
const REPS = Number(option('reps', '5'));
const LATENCY_MS = Number(option('latency', '5'));
const BANDWIDTH = Number(option('bandwidth', '20')) * 1e6;
const GOAL_AUTO_OVER_BEST = 1.1;
const GOAL_SMALL_OVER_LATENCY = 1.5;
const SMALL_BYTES = 4096;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}
const ms = (s: number) => (s * 1000).toFixed(1);
const rate = (perByte: number) => (perByte > 0 ? (1 / perByte / 1e6).toFixed(1) : 'inf');

async function main(): Promise<void> {
  const rows: Record<string, unknown>[] = [];
  console.log(`links: ${LATENCY_MS} ms one-way, ${BANDWIDTH / 1e6} MB/s per directed link (in-memory transport); ${REPS} reps per cell, ms: median [min..max] / predicted`);
  for (const tabs of TABS) {
    const mesh = createMemoryMesh(tabs, { latencyMs: LATENCY_MS, bytesPerSec: BANDWIDTH });
    const fit = roomFit(await Promise.all(mesh.map((t) => probeRoom(t, 0))));
    console.log(
      `\n${tabs} tabs: alpha ${ms(fit.alpha)} ms, beta ${rate(fit.beta)} MB/s per link, gamma ${rate(fit.gamma)} MB/s per rank` +
        ` (fitted from the probes, rms error ${(100 * fit.rmsRelativeError).toFixed(0)}%${fit.clamped.length ? `, held at 0: ${fit.clamped.join(', ')}` : ''}; set: ${LATENCY_MS} ms, ${BANDWIDTH / 1e6} MB/s)`,
    );
    console.log(['size', ...ALL_REDUCE_SCHEDULES, 'model', 'model/best', 'auto (its pick)', 'auto/best', 'lat', 'lat fit'].join(' | '));
    let round = 1;
    // The lab's picker: no refits but the one after its trials (its choice stays put while it is timed).
    const pickers = mesh.map((transport) => new CollectivePicker({ choice: 'auto', transport, refitEvery: 0 }));
    const runAuto = (r: number, bytes: number, collective: number) =>
      Promise.all(mesh.map((t, rank) => runPickedAllReduce(pickers[rank], t, new Float32Array(bytes / 4).fill(t.rank), { round: r, collective })));
    for (let step = 0; step <= TRIAL_STEPS; step++) {
      const r = round++;
      for (const [i, bytes] of SIZES.entries()) await runAuto(r, bytes, 16 + i);
      pickers.forEach((p) => p.endStep(r));
    }
    for (const bytes of SIZES) {
      const length = bytes / 4;
      const measured = {} as Record<AllReduceSchedule, number[]>;
      for (const algorithm of ALL_REDUCE_SCHEDULES) measured[algorithm] = [];
      const autoTimes: number[] = [];
      const autoPicks = new Set<AllReduceSchedule>();
      // Repetition 0 of each algorithm warms the code paths and buffers of that size and is not counted.
      for (let rep = 0; rep <= REPS; rep++) {
        for (const algorithm of ALL_REDUCE_SCHEDULES) {
          const r = round++;
          const t0 = performance.now();
          await Promise.all(mesh.map((t) => runAllReduceBy(algorithm, t, new Float32Array(length).fill(t.rank), { round: r, collective: 16 })));
          if (rep > 0) measured[algorithm].push((performance.now() - t0) / 1000);
        }
        const r = round++;
        const t0 = performance.now();
        await runAuto(r, bytes, 16);
        pickers.forEach((p) => p.endStep(r));
        if (rep > 0) {
          autoTimes.push((performance.now() - t0) / 1000);
          autoPicks.add(pickers[0].pick(bytes));
        }
      }
      const medians = Object.fromEntries(ALL_REDUCE_SCHEDULES.map((a) => [a, median(measured[a])])) as Record<AllReduceSchedule, number>;
      const predicted = Object.fromEntries(ALL_REDUCE_SCHEDULES.map((a) => [a, predictSeconds(a, tabs, bytes, fit)])) as Record<AllReduceSchedule, number>;
      const model = pickFastest(tabs, bytes, fit, AUTO_CANDIDATES).algorithm as AllReduceSchedule;
      const best = ALL_REDUCE_SCHEDULES.reduce((a, b) => (medians[b] < medians[a] ? b : a));
      const auto = median(autoTimes);
      // The picker's choice stays put between refits: one algorithm per size.
      const [picked] = autoPicks;
      const rounds = costTerms(picked, tabs, bytes).rounds;
      const overLatency = auto / ((rounds * LATENCY_MS) / 1000);
      const overFittedLatency = auto / (rounds * fit.alpha);
      const cells = ALL_REDUCE_SCHEDULES.map((a) => `${ms(medians[a])} [${ms(Math.min(...measured[a]))}..${ms(Math.max(...measured[a]))}] / ${ms(predicted[a])}`);
      const autoCell = `${ms(auto)} [${ms(Math.min(...autoTimes))}..${ms(Math.max(...autoTimes))}] (${[...autoPicks].join(', ')})`;
      console.log([`${bytes} B`, ...cells, model, (medians[model] / medians[best]).toFixed(2), autoCell, `${(auto / medians[best]).toFixed(2)} (best ${best})`, overLatency.toFixed(2), overFittedLatency.toFixed(2)].join(' | '));
      rows.push({
        tabs,
        bytes,
        fit: { alpha: fit.alpha, beta: fit.beta, gamma: fit.gamma, rmsRelativeError: fit.rmsRelativeError },
        model,
        modelOverBest: medians[model] / medians[best],
        auto: [...autoPicks],
        autoMeasured: auto,
        best,
        autoOverBest: auto / medians[best],
        autoOverLatencyBound: overLatency,
        autoOverFittedLatencyBound: overFittedLatency,
        ...Object.fromEntries(ALL_REDUCE_SCHEDULES.map((a) => [a, { measured: medians[a], min: Math.min(...measured[a]), max: Math.max(...measured[a]), predicted: predicted[a] }])),
      });
    }
  }
  const worst = Math.max(...rows.map((r) => r.autoOverBest as number));
  const small = rows.filter((r) => r.bytes === SMALL_BYTES);
  const worstSmall = small.length ? Math.max(...small.map((r) => r.autoOverLatencyBound as number)) : null;
  console.log(`\ngoal auto <= ${GOAL_AUTO_OVER_BEST}x best fixed: worst ${worst.toFixed(2)} ${worst <= GOAL_AUTO_OVER_BEST ? 'met' : 'NOT met'}`);
  if (worstSmall !== null) console.log(`goal 4 KiB <= ${GOAL_SMALL_OVER_LATENCY}x the chosen algorithm's latency bound: worst ${worstSmall.toFixed(2)} ${worstSmall <= GOAL_SMALL_OVER_LATENCY ? 'met' : 'NOT met'}`);
  console.log(JSON.stringify({ latencyMs: LATENCY_MS, bytesPerSec: BANDWIDTH, reps: REPS, rows }));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
