// Ring all-reduce over real WebRTC between headless Chromium tabs, measured against the raw speed of
// the very same tabs' links in the same run, and against the alpha-beta model fitted to those raw
// measurements (npm run bench:ring).
//
// What makes the numbers trustworthy:
// - every figure is the median of several repetitions, printed with its spread (min..max);
// - the all-reduce and the raw references run interleaved, rep by rep (all-reduce, raw through the
//   lab's transport, raw on a plain data channel, then the 4-byte hops), each after a barrier (a small
//   all-reduce) so that no tab starts a measurement while another is still busy with the previous one;
// - the raw link is measured twice: through the lab's transport (frames, checksums, reassembly,
//   backpressure: what the collectives pay) and on a second, plain RTCDataChannel per ring link that
//   carries bare ArrayBuffers with the same message size and backpressure marks (the physical
//   reference). Both streams move 2(N-1)/N of the vector, what one rank sends in a ring all-reduce;
// - a rep's time is the slowest tab's (a collective is done when its last rank is);
// - alpha and beta are fitted (src/collective/cost-model.ts, least squares on relative error) from the
//   raw samples of every size and rep, including the 4-byte hops, per room size, and the ring's
//   predicted time 2(N-1)(alpha + n/N beta) is printed beside each measured one.
//
// busBW = algBW * 2(N-1)/N (NCCL's convention: the bytes each rank moves per second, comparable to a
// link's speed). bus/plain and bus/transp = raw stream time / all-reduce time for the same bytes per
// rank (medians); best/best = the fastest raw rep of either kind / the fastest all-reduce rep, the
// share of what the link was seen to do at best (noise only ever slows a transfer down).
//
// Options: --tabs 2,3,4  --sizes 4096,65536,...  --reps N (default 9 up to 256 KiB, 5 above)
//          --url http://127.0.0.1:<port>/ (reuse a running lab; by default Vite serves it on a free port).
// Prints progress on stderr, tables on stdout, then one line of JSON.
import type { Browser, Page } from '@playwright/test';
import { type AlphaBetaFit, fitAlphaBeta, predictSeconds, type TimingSample } from '../src/collective/cost-model';
import { launchChromium, openTabs, startLabServer, uniqueRoom, type LabServer } from '../scripts/lab-browser';

const KiB = 1024;
const MiB = 1024 * KiB;
const DEFAULT_SIZES = [4 * KiB, 16 * KiB, 64 * KiB, 256 * KiB, 1 * MiB, 4 * MiB, 16 * MiB];
/** The collectives' message size (chunking.ts) and the transport's backpressure marks (datachannel-transport.ts). */
const MESSAGE_BYTES = 256 * KiB - KiB;
const HIGH_WATER_BYTES = 8 * MiB;
const LOW_WATER_BYTES = 1 * MiB;

function parseArgs(argv: string[]) {
  const args = { tabs: [2, 3, 4], sizes: DEFAULT_SIZES, reps: undefined as number | undefined, url: undefined as string | undefined };
  for (let i = 0; i < argv.length; i++) {
    const next = () => argv[++i] ?? '';
    if (argv[i] === '--tabs') args.tabs = next().split(',').map(Number);
    else if (argv[i] === '--sizes') args.sizes = next().split(',').map(Number);
    else if (argv[i] === '--reps') args.reps = Number(next());
    else if (argv[i] === '--url') args.url = next();
    else throw new Error(`unknown argument ${argv[i]}`);
  }
  if (args.tabs.some((n) => !Number.isInteger(n) || n < 2)) throw new Error('--tabs: integers >= 2');
  if (args.sizes.some((n) => !Number.isInteger(n) || n < 4 || n % 4 !== 0)) throw new Error('--sizes: multiples of 4 bytes');
  if (args.reps !== undefined && (!Number.isInteger(args.reps) || args.reps < 3)) throw new Error('--reps: an integer >= 3 (a median needs several)');
  return args;
}

function repsFor(bytes: number, override: number | undefined): number {
  if (override !== undefined) return override;
  return bytes <= 256 * KiB ? 9 : 5;
}

/**
 * Installed in every tab as plain JavaScript (not compiled by tsx, so nothing it injects can break the
 * page): `window.__ringBench` with the plain ring links and the interleaved measurement loop.
 */
const IN_PAGE = `
(() => {
  const MESSAGE = ${MESSAGE_BYTES}, HIGH = ${HIGH_WATER_BYTES}, LOW = ${LOW_WATER_BYTES};
  const state = { outPc: null, out: null, inPc: null, inChannel: null, received: 0, expected: 0, waiters: [] };
  const iceGathered = (pc) => new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    pc.addEventListener('icegatheringstatechange', () => { if (pc.iceGatheringState === 'complete') resolve(); });
  });
  const opened = (ch) => new Promise((resolve, reject) => {
    if (ch.readyState === 'open') return resolve();
    ch.addEventListener('open', () => resolve(), { once: true });
    ch.addEventListener('error', () => reject(new Error('plain data channel failed')), { once: true });
  });
  // Streams bytes to the ring successor on the plain channel while the predecessor streams as many to
  // us; resolves with the ms until both are done. Bare payloads, no header: ordered delivery lets us
  // count bytes.
  const plainStream = async (bytes) => {
    const total = (state.expected += bytes);
    const arrived = state.received >= total ? Promise.resolve() : new Promise((resolve) => state.waiters.push({ total, resolve }));
    const t0 = performance.now();
    const payload = new Uint8Array(Math.min(bytes, MESSAGE));
    for (let sent = 0; sent < bytes; ) {
      const size = Math.min(MESSAGE, bytes - sent);
      while (state.out.bufferedAmount > HIGH) {
        state.out.bufferedAmountLowThreshold = LOW;
        await new Promise((resolve) => state.out.addEventListener('bufferedamountlow', resolve, { once: true }));
      }
      state.out.send(size === payload.length ? payload : payload.subarray(0, size));
      sent += size;
    }
    await arrived;
    return performance.now() - t0;
  };
  window.__ringBench = {
    async offer() {
      const pc = new RTCPeerConnection();
      state.outPc = pc;
      state.out = pc.createDataChannel('plain-ring', { ordered: true });
      state.out.binaryType = 'arraybuffer';
      await pc.setLocalDescription(await pc.createOffer());
      await iceGathered(pc);
      return pc.localDescription.sdp;
    },
    async answer(sdp) {
      const pc = new RTCPeerConnection();
      state.inPc = pc;
      state.inChannel = new Promise((resolve) => {
        pc.addEventListener('datachannel', (event) => {
          const ch = event.channel;
          ch.binaryType = 'arraybuffer';
          ch.addEventListener('message', (m) => {
            state.received += m.data.byteLength;
            while (state.waiters.length && state.received >= state.waiters[0].total) state.waiters.shift().resolve();
          });
          resolve(ch);
        });
      });
      await pc.setRemoteDescription({ type: 'offer', sdp });
      await pc.setLocalDescription(await pc.createAnswer());
      await iceGathered(pc);
      return pc.localDescription.sdp;
    },
    async accept(sdp) { await state.outPc.setRemoteDescription({ type: 'answer', sdp }); },
    async ready() { await opened(state.out); await opened(await state.inChannel); },
    async runSize(vectorBytes, streamBytes, reps) {
      const mesh = window.lab.mesh;
      const world = mesh.status().world;
      const data = new Float32Array(vectorBytes / 4).fill(1);
      const barrier = () => mesh.allReduce(new Array(world).fill(0));
      const out = { allReduce: [], transport: [], plain: [], transportHop: [], plainHop: [] };
      // Warm-up, not recorded: first messages of this size, allocations, congestion windows.
      await barrier(); await mesh.allReduce(data);
      await barrier(); await mesh.ringStream(streamBytes);
      await barrier(); await plainStream(streamBytes);
      for (let rep = 0; rep < reps; rep++) {
        await barrier();
        const t0 = performance.now();
        await mesh.allReduce(data);
        out.allReduce.push(performance.now() - t0);
        await barrier(); out.transport.push((await mesh.ringStream(streamBytes)).ms);
        await barrier(); out.plain.push(await plainStream(streamBytes));
        await barrier(); out.transportHop.push((await mesh.ringStream(4)).ms);
        await barrier(); out.plainHop.push(await plainStream(4));
      }
      return out;
    },
  };
})();
`;

interface TabTimes {
  allReduce: number[];
  transport: number[];
  plain: number[];
  transportHop: number[];
  plainHop: number[];
}

interface Spread {
  median: number;
  min: number;
  max: number;
}

interface Row {
  tabs: number;
  bytes: number;
  streamBytes: number;
  reps: number;
  allReduceMs: Spread;
  transportMs: Spread;
  plainMs: Spread;
  algBW: number;
  busBW: number;
  plainBW: number;
  transportBW: number;
  busOverPlain: number;
  busOverTransport: number;
  /** Fastest all-reduce rep against the fastest raw rep of either kind: what the link was seen to do at best. */
  bestBusOverBestLink: number;
  transportOverPlain: number;
  predictedMs: number;
}

interface RoomFit {
  tabs: number;
  transport: AlphaBetaFit;
  plain: AlphaBetaFit;
  transportHopMs: Spread;
  plainHopMs: Spread;
}

function spread(values: number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  return { median, min: sorted[0], max: sorted[sorted.length - 1] };
}

/** Per rep, the slowest tab's time (a collective is done when its last rank is). */
function slowest(perTab: number[][]): number[] {
  return perTab[0].map((_, rep) => Math.max(...perTab.map((times) => times[rep])));
}

const mbps = (bytes: number, ms: number) => bytes / 1e6 / (ms / 1000);

async function linkPlainRing(pages: Page[]): Promise<void> {
  for (const page of pages) await page.evaluate(IN_PAGE);
  for (let i = 0; i < pages.length; i++) {
    const next = pages[(i + 1) % pages.length];
    const offer = await pages[i].evaluate('window.__ringBench.offer()');
    const answer = await next.evaluate(`window.__ringBench.answer(${JSON.stringify(offer)})`);
    await pages[i].evaluate(`window.__ringBench.accept(${JSON.stringify(answer)})`);
  }
  await Promise.all(pages.map((p) => p.evaluate('window.__ringBench.ready()')));
}

async function benchRoom(browser: Browser, url: string, tabs: number, sizes: number[], repsOverride: number | undefined) {
  const context = await browser.newContext();
  try {
    const pages = await openTabs(context, url, tabs);
    await Promise.all(pages.map((p) => p.waitForFunction(() => typeof (window as unknown as { lab?: { mesh?: unknown } }).lab?.mesh === 'object')));
    const room = uniqueRoom(`bench${tabs}`).slice(0, 32);
    await Promise.all(pages.map((p) => p.evaluate(`window.lab.mesh.join(${JSON.stringify(room)}, { expect: ${tabs} })`)));
    await linkPlainRing(pages);

    const rows: Omit<Row, 'predictedMs'>[] = [];
    const transportSamples: TimingSample[] = [];
    const plainSamples: TimingSample[] = [];
    const transportHops: number[] = [];
    const plainHops: number[] = [];
    for (const bytes of sizes) {
      const reps = repsFor(bytes, repsOverride);
      const streamBytes = Math.round((bytes * 2 * (tabs - 1)) / tabs);
      const perTab = (await Promise.all(pages.map((p) => p.evaluate(`window.__ringBench.runSize(${bytes}, ${streamBytes}, ${reps})`)))) as TabTimes[];
      const pick = (key: keyof TabTimes) => slowest(perTab.map((t) => t[key]));
      const allReduce = pick('allReduce');
      const transport = pick('transport');
      const plain = pick('plain');
      for (const ms of transport) transportSamples.push({ bytes: streamBytes, seconds: ms / 1000 });
      for (const ms of plain) plainSamples.push({ bytes: streamBytes, seconds: ms / 1000 });
      for (const ms of pick('transportHop')) {
        transportHops.push(ms);
        transportSamples.push({ bytes: 4, seconds: ms / 1000 });
      }
      for (const ms of pick('plainHop')) {
        plainHops.push(ms);
        plainSamples.push({ bytes: 4, seconds: ms / 1000 });
      }
      const allReduceMs = spread(allReduce);
      const transportMs = spread(transport);
      const plainMs = spread(plain);
      const algBW = mbps(bytes, allReduceMs.median);
      const busBW = (algBW * 2 * (tabs - 1)) / tabs;
      rows.push({
        tabs,
        bytes,
        streamBytes,
        reps,
        allReduceMs,
        transportMs,
        plainMs,
        algBW,
        busBW,
        plainBW: mbps(streamBytes, plainMs.median),
        transportBW: mbps(streamBytes, transportMs.median),
        busOverPlain: plainMs.median / allReduceMs.median,
        busOverTransport: transportMs.median / allReduceMs.median,
        bestBusOverBestLink: Math.min(transportMs.min, plainMs.min) / allReduceMs.min,
        transportOverPlain: plainMs.median / transportMs.median,
      });
      console.error(
        `  ${tabs} tabs ${fmtBytes(bytes)} x${reps}: all-reduce ${allReduceMs.median.toFixed(1)} ms, ` +
          `raw transport ${transportMs.median.toFixed(1)} ms, raw plain ${plainMs.median.toFixed(1)} ms`,
      );
    }
    const fit: RoomFit = {
      tabs,
      transport: fitAlphaBeta(transportSamples),
      plain: fitAlphaBeta(plainSamples),
      transportHopMs: spread(transportHops),
      plainHopMs: spread(plainHops),
    };
    const withPrediction: Row[] = rows.map((r) => ({ ...r, predictedMs: predictSeconds('ring', tabs, r.bytes, fit.transport) * 1000 }));
    return { rows: withPrediction, fit };
  } finally {
    await context.close();
  }
}

function fmtBytes(n: number): string {
  if (n >= MiB) return `${n / MiB} MiB`;
  if (n >= KiB) return `${n / KiB} KiB`;
  return `${n} B`;
}

const pad = (s: string, n: number): string => s.padStart(n);
const fmtSpread = (s: Spread, digits = 1): string => `${s.median.toFixed(digits)} [${s.min.toFixed(digits)}..${s.max.toFixed(digits)}]`;

function printTables(rows: Row[], fits: RoomFit[]): void {
  console.log('\nRing all-reduce over WebRTC data channels vs the raw speed of the same links');
  console.log('(ms: median [min..max] over the reps; MB/s = 1e6 B/s; raw streams carry 2(N-1)/N of the vector, as one rank does in the ring)');
  console.log(
    `${pad('tabs', 4)} ${pad('size', 8)} ${pad('reps', 4)} ${pad('all-reduce ms', 24)} ${pad('model ms', 9)} ${pad('busBW', 7)} ` +
      `${pad('raw plain ms', 24)} ${pad('MB/s', 6)} ${pad('raw transport ms', 24)} ${pad('bus/plain', 9)} ${pad('bus/transp', 10)} ${pad('best/best', 9)} ${pad('transp/plain', 12)}`,
  );
  for (const r of rows) {
    const digits = r.allReduceMs.median < 10 ? 2 : 1;
    console.log(
      `${pad(String(r.tabs), 4)} ${pad(fmtBytes(r.bytes), 8)} ${pad(String(r.reps), 4)} ${pad(fmtSpread(r.allReduceMs, digits), 24)} ${pad(r.predictedMs.toFixed(digits), 9)} ` +
        `${pad(r.busBW.toFixed(2), 7)} ${pad(fmtSpread(r.plainMs, digits), 24)} ${pad(r.plainBW.toFixed(2), 6)} ${pad(fmtSpread(r.transportMs, digits), 24)} ` +
        `${pad(r.busOverPlain.toFixed(2), 9)} ${pad(r.busOverTransport.toFixed(2), 10)} ${pad(r.bestBusOverBestLink.toFixed(2), 9)} ${pad(r.transportOverPlain.toFixed(2), 12)}`,
    );
  }
  console.log('bus/plain, bus/transp: raw stream time / all-reduce time, medians. best/best: the fastest raw rep of either kind / the fastest all-reduce rep.');
  console.log("model ms = 2(N-1)(alpha + n/N beta) with the transport fit of the same room size (the ring runs over the lab's transport).");
  console.log('\nAlpha-beta fits of the raw streams (all sizes and reps, 4-byte hops included; least squares on relative error)');
  console.log(`${pad('tabs', 4)} ${pad('link', 10)} ${pad('alpha ms', 9)} ${pad('1/beta MB/s', 12)} ${pad('rms rel err', 12)} ${pad('4-byte hop ms', 24)}`);
  for (const f of fits) {
    for (const [name, fit, hop] of [['plain', f.plain, f.plainHopMs], ['transport', f.transport, f.transportHopMs]] as const) {
      console.log(
        `${pad(String(f.tabs), 4)} ${pad(name, 10)} ${pad((fit.alpha * 1000).toFixed(3), 9)} ${pad((1 / fit.beta / 1e6).toFixed(2), 12)} ` +
          `${pad(fit.rmsRelativeError.toFixed(3), 12)} ${pad(fmtSpread(hop, 2), 24)}${fit.clamped ? '  (clamped)' : ''}`,
      );
    }
  }
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  let server: LabServer | undefined;
  const url = args.url ?? (server = await startLabServer()).url;
  const browser = await launchChromium();
  const rows: Row[] = [];
  const fits: RoomFit[] = [];
  try {
    for (const tabs of args.tabs) {
      console.error(`${tabs} tabs...`);
      const result = await benchRoom(browser, url, tabs, args.sizes, args.reps);
      rows.push(...result.rows);
      fits.push(result.fit);
    }
  } finally {
    await browser.close();
    await server?.close();
  }
  printTables(rows, fits);
  console.log(JSON.stringify({ bench: 'ring', unit: { time: 'ms', bandwidth: 'MB/s', alpha: 's', beta: 's/B' }, rows, fits }));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
