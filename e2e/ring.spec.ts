// Ring all-reduce over real WebRTC data channels between real Chromium tabs: tabs of one browser meet
// through BroadcastChannel, tabs of separate browser processes through the signalling server.
import { expect, test, type Page } from '@playwright/test';
import {
  SIGNAL_URL,
  allReduceAll,
  expectedSum,
  joinAll,
  launchSeparateBrowser,
  openMeshTab,
  openMeshTabs,
  sha256,
  uniqueRoom,
  type MeshWindow,
} from './fixtures';

const N = 1_000_000;

/** Integer vectors: every tab must hold exactly the expected sum, bit for bit. */
async function checkExactSum(pages: Page[], ranks: number[], n: number) {
  const expected = Float32Array.from(expectedSum(pages.length, n, 'int', 1));
  const outcomes = await allReduceAll(pages, ranks, n, 'int', 1);
  for (const o of outcomes) expect(o.hash).toBe(sha256(expected));
  return outcomes;
}

/** Real floats: all tabs hold the same bytes, within float32 rounding of the float64 sum. */
async function checkFloatSum(pages: Page[], ranks: number[], n: number) {
  const expected = expectedSum(pages.length, n, 'float', 100);
  const outcomes = await allReduceAll(pages, ranks, n, 'float', 100);
  expect(new Set(outcomes.map((o) => o.hash)).size).toBe(1);
  let maxError = 0;
  outcomes[0].samples.forEach((v, k) => (maxError = Math.max(maxError, Math.abs(v - expected[k * 997]))));
  // each partial sum rounds once in float32 (ulp of values up to `world` is < world * 1.2e-7)
  expect(maxError).toBeLessThan(pages.length * 2.4e-7 * pages.length);
  expect(outcomes[0].samples.length).toBe(Math.ceil(n / 997));
}

test('4 tabs of one browser all-reduce 1,000,000 floats over WebRTC (BroadcastChannel signalling)', async ({ context }) => {
  const pages = await openMeshTabs(context, 4);
  const joined = await joinAll(pages, uniqueRoom('ring4'));
  expect(joined.map((j) => j.rank).sort()).toEqual([0, 1, 2, 3]);
  for (const j of joined) expect(j.members).toEqual(joined[0].members);
  const ranks = joined.map((j) => j.rank);

  const outcomes = await checkExactSum(pages, ranks, N);
  console.log(`4 tabs, ${N} floats: ${outcomes.map((o) => o.ms.toFixed(0)).join(' / ')} ms`);
  await checkFloatSum(pages, ranks, N);

  const status = await pages[0].evaluate(() => (window.lab as unknown as MeshWindow).mesh.status());
  expect(status.world).toBe(4);
  expect(status.refusedFrames).toBe(0);
  // a ring all-reduce sends 2(N-1)/N of the vector per rank, plus frame headers
  expect(status.bytesSent).toBeGreaterThanOrEqual(2 * (2 * 3 * N * 4) / 4);
  expect(status.peers.every((p) => p.state === 'connected')).toBe(true);
});

test('two separate browser processes meet through the signalling server and all-reduce', async () => {
  const browsers = [await launchSeparateBrowser(), await launchSeparateBrowser()];
  try {
    const pages = await Promise.all(browsers.map(async (b, i) => openMeshTab(await b.newContext(), `browser ${i}`)));
    const joined = await joinAll(pages, uniqueRoom('ws2'), { signal: SIGNAL_URL });
    expect(joined.map((j) => j.world)).toEqual([2, 2]);
    const ranks = joined.map((j) => j.rank);
    expect([...ranks].sort()).toEqual([0, 1]);
    await checkExactSum(pages, ranks, N);
    await checkFloatSum(pages, ranks, N);
  } finally {
    await Promise.all(browsers.map((b) => b.close()));
  }
});

test('a tab that closes is noticed at once, and a collective waiting on it fails instead of hanging', async ({ context }) => {
  const pages = await openMeshTabs(context, 3);
  const joined = await joinAll(pages, uniqueRoom('leave3'));
  const leaver = joined.findIndex((j) => j.rank === 2);
  const stayers = pages.filter((_, i) => i !== leaver);
  await pages[leaver].close(); // pagehide closes its peers: the others hear of it within milliseconds
  for (const page of stayers) {
    await expect.poll(() => page.evaluate(() => (window.lab as unknown as MeshWindow).mesh.status().peers.length), { timeout: 10_000 }).toBe(1);
  }
  const t0 = Date.now();
  const errors = await Promise.all(
    stayers.map((page) =>
      page.evaluate(() =>
        (window.lab as unknown as MeshWindow).mesh.allReduce(new Float32Array(1000)).then(
          () => 'completed',
          (err: Error) => err.message,
        ),
      ),
    ),
  );
  for (const e of errors) expect(e).toMatch(/rank 2 .*lost/);
  expect(Date.now() - t0).toBeLessThan(5000);
});

test('16 tabs of one browser form a ring and all-reduce', async ({ context }) => {
  test.setTimeout(240_000);
  const pages = await openMeshTabs(context, 16);
  const joined = await joinAll(pages, uniqueRoom('ring16'), { timeoutMs: 150_000 });
  expect(joined.map((j) => j.rank).sort((a, b) => a - b)).toEqual([...Array(16).keys()]);
  const ranks = joined.map((j) => j.rank);
  const n = 262_144;
  const outcomes = await checkExactSum(pages, ranks, n);
  console.log(`16 tabs, ${n} floats: slowest ${Math.max(...outcomes.map((o) => o.ms)).toFixed(0)} ms`);
});
