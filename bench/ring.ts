// Ring all-reduce over real WebRTC between headless Chromium tabs, measured against the raw speed of
// the very same links in the same run (npm run bench:ring).
//
// For 2, 3 and 4 tabs and vectors of 4 KiB .. 16 MiB it prints:
// - algBW = bytes / time of one all-reduce; busBW = algBW * 2(N-1)/N (the bytes each rank moves, so
//   busBW is comparable to a link's speed; NCCL's convention);
// - raw = the link speed when every tab streams the same bytes (2(N-1)/N of the vector) to its ring
//   successor at once, through the same transport (framing, checksums, backpressure included);
// - busBW / raw: how much of the links' speed the ring uses (1.0 is ideal);
// - small-message latency: an all-reduce of one float vs 2(N-1) one-hop latencies (one tiny message to
//   the successor), which is what a ring must pay at least.
// Then a table, then one line of JSON.
//
// Options: --tabs 2,3,4  --sizes 4096,65536,...  --url http://127.0.0.1:5173/ (reuse a running vite).
import type { Browser, Page } from '@playwright/test';
import { launchChromium, openTabs, startLabServer, uniqueRoom, type LabServer } from '../scripts/lab-browser';

interface Row {
  tabs: number;
  bytes: number;
  allReduceMs: number;
  algBW: number;
  busBW: number;
  rawBW: number;
  busOverRaw: number;
}

interface LatencyRow {
  tabs: number;
  allReduceMs: number;
  hopMs: number;
  ringBoundMs: number;
}

const KiB = 1024;
const MiB = 1024 * KiB;
const DEFAULT_SIZES = [4 * KiB, 64 * KiB, 256 * KiB, 1 * MiB, 4 * MiB, 16 * MiB];

function parseArgs(argv: string[]) {
  const args = { tabs: [2, 3, 4], sizes: DEFAULT_SIZES, url: undefined as string | undefined };
  for (let i = 0; i < argv.length; i++) {
    const next = () => argv[++i] ?? '';
    if (argv[i] === '--tabs') args.tabs = next().split(',').map(Number);
    else if (argv[i] === '--sizes') args.sizes = next().split(',').map(Number);
    else if (argv[i] === '--url') args.url = next();
    else throw new Error(`unknown argument ${argv[i]}`);
  }
  if (args.tabs.some((n) => !Number.isInteger(n) || n < 2)) throw new Error('--tabs: integers >= 2');
  if (args.sizes.some((n) => !Number.isInteger(n) || n < 4 || n % 4 !== 0)) throw new Error('--sizes: multiples of 4 bytes');
  return args;
}

/** Fewer repetitions for big vectors: keeps the whole run to a few minutes on 2 cores. */
function repsFor(bytes: number): number {
  if (bytes <= 64 * KiB) return 10;
  if (bytes <= 1 * MiB) return 3;
  return 1;
}

interface LabMesh {
  join(room: string, opts: { expect: number }): Promise<{ rank: number }>;
  allReduce(values: Float32Array): Promise<Float32Array>;
  ringStream(bytes: number): Promise<{ ms: number }>;
  leave(): void;
}

/** Runs `reps` all-reduces of `elements` floats back to back in every tab; the slowest tab's mean, ms. */
async function timeAllReduce(pages: Page[], elements: number, reps: number): Promise<number> {
  const times = await Promise.all(
    pages.map((p) =>
      p.evaluate(
        async ([elements, reps]) => {
          const mesh = (window.lab as unknown as { mesh: LabMesh }).mesh;
          const data = new Float32Array(elements).fill(1);
          await mesh.allReduce(data.subarray(0, Math.min(elements, 65536))); // warm-up: first messages, allocations
          const t0 = performance.now();
          for (let r = 0; r < reps; r++) await mesh.allReduce(data);
          return (performance.now() - t0) / reps;
        },
        [elements, reps] as const,
      ),
    ),
  );
  return Math.max(...times);
}

/** Every tab streams `bytes` to its successor at once, `reps` times; the slowest tab's mean, ms. */
async function timeRingStream(pages: Page[], bytes: number, reps: number): Promise<number> {
  const times = await Promise.all(
    pages.map((p) =>
      p.evaluate(
        async ([bytes, reps]) => {
          const mesh = (window.lab as unknown as { mesh: LabMesh }).mesh;
          await mesh.ringStream(bytes);
          let total = 0;
          for (let r = 0; r < reps; r++) total += (await mesh.ringStream(bytes)).ms;
          return total / reps;
        },
        [bytes, reps] as const,
      ),
    ),
  );
  return Math.max(...times);
}

const mbps = (bytes: number, ms: number) => bytes / 1e6 / (ms / 1000);

async function benchRoom(browser: Browser, url: string, tabs: number, sizes: number[]) {
  const context = await browser.newContext();
  try {
    const pages = await openTabs(context, url, tabs);
    await Promise.all(
      pages.map((p) => p.waitForFunction(() => typeof (window as unknown as { lab?: { mesh?: unknown } }).lab?.mesh === 'object')),
    );
    const room = uniqueRoom(`bench${tabs}`).slice(0, 32);
    await Promise.all(
      pages.map((p) => p.evaluate(([room, tabs]) => (window.lab as unknown as { mesh: LabMesh }).mesh.join(room, { expect: tabs }), [room, tabs] as const)),
    );
    const rows: Row[] = [];
    for (const bytes of sizes) {
      const reps = repsFor(bytes);
      const perRank = Math.round((bytes * 2 * (tabs - 1)) / tabs);
      const allReduceMs = await timeAllReduce(pages, bytes / 4, reps);
      const rawMs = await timeRingStream(pages, perRank, reps);
      const algBW = mbps(bytes, allReduceMs);
      const busBW = (algBW * 2 * (tabs - 1)) / tabs;
      const rawBW = mbps(perRank, rawMs);
      rows.push({ tabs, bytes, allReduceMs, algBW, busBW, rawBW, busOverRaw: busBW / rawBW });
      console.error(`  ${tabs} tabs ${fmtBytes(bytes)}: ${allReduceMs.toFixed(1)} ms, busBW ${busBW.toFixed(2)} MB/s, raw ${rawBW.toFixed(2)} MB/s`);
    }
    const latencyReps = 30;
    const allReduceMs = await timeAllReduce(pages, 1, latencyReps);
    const hopMs = await timeRingStream(pages, 4, latencyReps);
    const latency: LatencyRow = { tabs, allReduceMs, hopMs, ringBoundMs: 2 * (tabs - 1) * hopMs };
    return { rows, latency };
  } finally {
    await context.close();
  }
}

function fmtBytes(n: number): string {
  return n >= MiB ? `${n / MiB} MiB` : `${n / KiB} KiB`;
}

function pad(s: string, n: number): string {
  return s.padStart(n);
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  let server: LabServer | undefined;
  const url = args.url ?? (server = await startLabServer()).url;
  const browser = await launchChromium();
  const rows: Row[] = [];
  const latency: LatencyRow[] = [];
  try {
    for (const tabs of args.tabs) {
      console.error(`${tabs} tabs...`);
      const result = await benchRoom(browser, url, tabs, args.sizes);
      rows.push(...result.rows);
      latency.push(result.latency);
    }
  } finally {
    await browser.close();
    await server?.close();
  }

  console.log('\nRing all-reduce over WebRTC data channels vs the raw speed of the same links (MB/s = 1e6 B/s)');
  console.log(`${pad('tabs', 4)} ${pad('size', 9)} ${pad('time ms', 9)} ${pad('algBW', 8)} ${pad('busBW', 8)} ${pad('raw link', 9)} ${pad('bus/raw', 8)}`);
  for (const r of rows) {
    console.log(
      `${pad(String(r.tabs), 4)} ${pad(fmtBytes(r.bytes), 9)} ${pad(r.allReduceMs.toFixed(1), 9)} ${pad(r.algBW.toFixed(2), 8)} ` +
        `${pad(r.busBW.toFixed(2), 8)} ${pad(r.rawBW.toFixed(2), 9)} ${pad(r.busOverRaw.toFixed(2), 8)}`,
    );
  }
  console.log('\nSmall-message latency: all-reduce of one float vs 2(N-1) one-hop latencies');
  console.log(`${pad('tabs', 4)} ${pad('allreduce ms', 13)} ${pad('hop ms', 8)} ${pad('2(N-1)*hop', 11)} ${pad('ratio', 6)}`);
  for (const l of latency) {
    console.log(
      `${pad(String(l.tabs), 4)} ${pad(l.allReduceMs.toFixed(2), 13)} ${pad(l.hopMs.toFixed(2), 8)} ${pad(l.ringBoundMs.toFixed(2), 11)} ${pad((l.allReduceMs / l.ringBoundMs).toFixed(2), 6)}`,
    );
  }
  console.log(JSON.stringify({ bench: 'ring', unit: 'MB/s', rows, latency }));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
