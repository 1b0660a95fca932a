// Where does one tab's step time go in a data-parallel run? (npx tsx bench/overlap-profile.ts --tabs 4)
//
// Trains like the swarm (N headless tabs, one room, autostart) while the Chrome DevTools CPU profiler
// samples rank 0's main thread; then prints the tab's own step figures (compute, communication,
// step, overlap ratio: the same numbers the swarm summary prints) and the main thread's self time by
// function and by part of the stack that it belongs to (CRC-32, framing, executor, GPU readback...).
// The main thread is where every byte of a gradient is checksummed, copied and summed, so this is the
// budget that overlap has to fit in.
//
// Options: --tabs 4 --steps 60 --bucket 65536 --model mlp --dataset mnist --top 25 --dashboard 0
import type { CDPSession, Page } from '@playwright/test';
import { launchChromium, openTabs, startLabServer, uniqueRoom } from '../scripts/lab-browser';
import { prepareData } from '../scripts/prepare-data';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

function parseArgs(argv: string[]) {
  const args = { tabs: 4, steps: 60, bucket: 65536, model: 'mlp', dataset: 'mnist', top: 25, dashboard: 0 };
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i].replace(/^--/, '') as keyof typeof args;
    const value = argv[++i];
    if (!(key in args) || value === undefined) throw new Error(`unknown or incomplete argument ${argv[i - 1]}`);
    (args as Record<string, string | number>)[key] = typeof args[key] === 'number' ? Number(value) : value;
  }
  return args;
}

/** The part of the product a stack belongs to: the innermost frame whose file names one of these. */
const PARTS: [string, RegExp][] = [
  ['crc32', /\/crc32\.ts/],
  ['frame encode/decode', /\/frame\.ts/],
  ['transport (split, reassemble)', /\/datachannel-transport\.ts/],
  ['mesh (simple-peer, channel)', /\/mesh\.ts|simplepeer/],
  ['executor (sum, copy, average)', /\/executor\.ts/],
  ['data-parallel (buckets)', /\/data-parallel\.ts/],
  ['engine/gpu (record, read, write)', /\/engine\/|\/gpu\//],
  ['model', /\/model\//],
  ['trainer/optimizer', /\/train\//],
  ['lab/ui', /\/lab\/|\/ui\/|react|zustand/],
];

function summarise(profile: CpuProfile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfMs = new Map<number, number>();
  profile.samples.forEach((id, i) => selfMs.set(id, (selfMs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000));
  const byFunction = new Map<string, number>();
  const byPart = new Map<string, number>();
  let total = 0;
  for (const [id, ms] of selfMs) {
    const node = byId.get(id)!;
    total += ms;
    const f = node.callFrame;
    const file = f.url.split('/').pop()?.split('?')[0] ?? '';
    const name = `${f.functionName || '(anonymous)'} ${file}${file ? `:${f.lineNumber + 1}` : ''}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + ms);
    let part = ['(idle)', '(program)', '(garbage collector)'].includes(f.functionName) ? f.functionName : 'other';
    for (let at: number | undefined = id; at !== undefined && part === 'other'; at = parent.get(at)) {
      const url = byId.get(at)!.callFrame.url;
      const hit = PARTS.find(([, re]) => re.test(url));
      if (hit) part = hit[0];
    }
    byPart.set(part, (byPart.get(part) ?? 0) + ms);
  }
  const sorted = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]);
  return { total, byFunction: sorted(byFunction), byPart: sorted(byPart) };
}

async function main() {
  prepareData(); // the tabs load the built-in data sets from public/data
  const args = parseArgs(process.argv.slice(2));
  const server = await startLabServer();
  const browser = await launchChromium();
  try {
    const context = await browser.newContext();
    const query = new URLSearchParams({
      room: uniqueRoom('overlap'),
      model: args.model,
      dataset: args.dataset,
      steps: String(args.steps),
      world: String(args.tabs),
      bucket: String(args.bucket),
      // As the swarm runs them: no dashboards (--dashboard 1 profiles what drawing them costs).
      dashboard: String(args.dashboard),
      autostart: '1',
    });
    const pages: Page[] = await openTabs(context, `${server.url}/?${query}`, args.tabs);
    const cdp: CDPSession = await context.newCDPSession(pages[0]);
    await cdp.send('Profiler.enable');
    await cdp.send('Profiler.setSamplingInterval', { interval: 200 });
    await cdp.send('Profiler.start');
    const t0 = performance.now();
    for (;;) {
      await new Promise((r) => setTimeout(r, 1000));
      const states = await Promise.all(pages.map((p) => p.evaluate(() => window.lab?.status())));
      const failed = states.find((s) => s?.state === 'error');
      if (failed) throw new Error(`rank ${failed.rank}: ${failed.error}`);
      if (states.every((s) => s?.state === 'done')) break;
      if (performance.now() - t0 > 600_000) throw new Error('timed out');
    }
    const { profile } = (await cdp.send('Profiler.stop')) as { profile: CpuProfile };
    const metrics = await Promise.all(pages.map((p) => p.evaluate(() => window.lab!.metrics())));
    const mean = (pick: (m: (typeof metrics)[number]) => number) => metrics.reduce((s, m) => s + pick(m), 0) / metrics.length;
    const compute = mean((m) => m.computeMsPerStep);
    const comm = mean((m) => m.commMsPerStep);
    const step = mean((m) => m.stepMsPerStep);
    console.log(`${args.tabs} tabs, ${args.model} on ${args.dataset}, bucket ${args.bucket}, ${args.steps} steps`);
    metrics.forEach((m, rank) =>
      console.log(`  rank ${rank}: compute ${m.computeMsPerStep.toFixed(1)} ms, comm ${m.commMsPerStep.toFixed(1)} ms, step ${m.stepMsPerStep.toFixed(1)} ms`),
    );
    console.log(`  mean: compute ${compute.toFixed(1)}, comm ${comm.toFixed(1)}, step ${step.toFixed(1)}; overlap step/max = ${(step / Math.max(compute, comm)).toFixed(2)}`);
    const s = summarise(profile);
    const wallMs = (profile.endTime - profile.startTime) / 1000;
    console.log(`\nrank 0 main thread, ${wallMs.toFixed(0)} ms profiled:`);
    for (const [part, ms] of s.byPart) console.log(`  ${part.padEnd(34)} ${ms.toFixed(0).padStart(7)} ms  ${((100 * ms) / wallMs).toFixed(1).padStart(5)}%`);
    console.log(`\ntop ${args.top} functions by self time:`);
    for (const [name, ms] of s.byFunction.slice(0, args.top)) console.log(`  ${ms.toFixed(0).padStart(7)} ms  ${name}`);
  } finally {
    await browser.close();
    await server.close();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
