// Every all-reduce algorithm (ring, tree, rhd, naive) against the alpha-beta model's prediction, per
// message size and room size, and what `collective=auto` picks (npm run bench:collectives).
//
// The links are the in-memory transport's (src/collective/memory-transport.ts) with a set one-way
// latency and rate per directed link, so the physics is known and the same in every run; real WebRTC
// links between tabs are bench/ring.ts's subject. In the same run, per room size: the ring's links are
// probed with the lab's own ping-pong (src/parallel/collective-choice.ts probeLink), alpha and beta are
// fitted from the probe alone (what a room has when it forms), and each algorithm's measured median
// (with its spread over the repetitions) is printed beside its prediction. A rep's time is the slowest
// rank's. "auto" names the algorithm the fit picks (from ring, tree and rhd, as the lab's picker);
// "auto/best" is its measured time over the fastest measured one of those three, "auto/any" over the
// fastest of all four (1.00: auto chose the fastest).
//
// The model assumes a rank sends one message at a time (cost-model.ts); the in-memory links, like a
// browser's separate data channels, let a rank send to all its peers at once, so the naive all-reduce
// (everyone to everyone at once) beats its prediction here: the table shows by how much.
//
// Options: --tabs 2,3,4,8  --sizes 4096,65536,1048576  --reps 5  --latency 5 (ms)  --bandwidth 20 (MB/s)
// Prints tables on stdout, then one line of JSON.
import { ALL_REDUCE_SCHEDULES, runAllReduceBy, type AllReduceSchedule } from '../src/collective/allreduce-algorithms';
import { fitAlphaBeta, pickFastest, predictSeconds } from '../src/collective/cost-model';
import { createMemoryMesh } from '../src/collective/memory-transport';
import { probeLink } from '../src/parallel/collective-choice';

function option(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 && process.argv[at + 1] ? process.argv[at + 1] : fallback;
}
const numbers = (raw: string) => raw.split(',').map(Number);

const TABS = numbers(option('tabs', '2,3,4,8'));
const SIZES = numbers(option('sizes', '4096,65536,1048576'));
const REPS = Number(option('reps', '5'));
const LATENCY_MS = Number(option('latency', '5'));
const BANDWIDTH = Number(option('bandwidth', '20')) * 1e6;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}
const ms = (s: number) => (s * 1000).toFixed(1);

async function main(): Promise<void> {
  const rows: Record<string, unknown>[] = [];
  console.log(`links: ${LATENCY_MS} ms one-way, ${BANDWIDTH / 1e6} MB/s per directed link (in-memory transport); ${REPS} reps per cell, median [min..max] ms`);
  for (const tabs of TABS) {
    const mesh = createMemoryMesh(tabs, { latencyMs: LATENCY_MS, bytesPerSec: BANDWIDTH });
    const probes = await Promise.all(mesh.map((t) => probeLink(t, 0)));
    const fit = fitAlphaBeta(probes.flat());
    console.log(`\n${tabs} tabs: alpha ${ms(fit.alpha)} ms, beta ${(1 / fit.beta / 1e6).toFixed(2)} MB/s (fitted from the ping-pong; set: ${LATENCY_MS} ms, ${BANDWIDTH / 1e6} MB/s)`);
    console.log(['size', ...ALL_REDUCE_SCHEDULES.map((a) => `${a} measured / predicted`), 'auto', 'auto/best', 'auto/any'].join(' | '));
    let round = 1;
    for (const bytes of SIZES) {
      const length = bytes / 4;
      const measured = {} as Record<AllReduceSchedule, number[]>;
      for (const algorithm of ALL_REDUCE_SCHEDULES) measured[algorithm] = [];
      for (let rep = 0; rep < REPS; rep++) {
        // Interleaved: each rep runs every algorithm once, so drift in the machine's load hits all alike.
        for (const algorithm of ALL_REDUCE_SCHEDULES) {
          const t0 = performance.now();
          const r = round++;
          await Promise.all(mesh.map((t) => runAllReduceBy(algorithm, t, new Float32Array(length).fill(t.rank), { round: r, collective: 16 })));
          measured[algorithm].push((performance.now() - t0) / 1000);
        }
      }
      const medians = Object.fromEntries(ALL_REDUCE_SCHEDULES.map((a) => [a, median(measured[a])])) as Record<AllReduceSchedule, number>;
      const auto = pickFastest(tabs, bytes, fit, ['ring', 'tree', 'rhd']).algorithm as AllReduceSchedule;
      const best = Math.min(medians.ring, medians.tree, medians.rhd);
      const any = Math.min(...Object.values(medians));
      const cells = ALL_REDUCE_SCHEDULES.map((a) => `${ms(medians[a])} [${ms(Math.min(...measured[a]))}..${ms(Math.max(...measured[a]))}] / ${ms(predictSeconds(a, tabs, bytes, fit))}`);
      console.log([`${bytes} B`, ...cells, auto, (medians[auto] / best).toFixed(2), (medians[auto] / any).toFixed(2)].join(' | '));
      rows.push({ tabs, bytes, alpha: fit.alpha, beta: fit.beta, auto, autoOverBest: medians[auto] / best, autoOverAny: medians[auto] / any, ...Object.fromEntries(ALL_REDUCE_SCHEDULES.map((a) => [a, { measured: medians[a], predicted: predictSeconds(a, tabs, bytes, fit) }])) });
    }
  }
  console.log(JSON.stringify({ latencyMs: LATENCY_MS, bytesPerSec: BANDWIDTH, reps: REPS, rows }));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
