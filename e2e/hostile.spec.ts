// Hostile peers, over real WebRTC between real tabs:
// 1. A tab in the room sends 10,000 random and mutated frames (src/peer/hostile-frames.ts) over its
//    real data channels to two tabs that are training together: every frame is refused with a
//    reason, training goes on, the replicas stay bitwise equal and the loss keeps falling.
// 2. A peer that keeps sending bad frames is excluded from the room, and the dashboard says so.
// 3. Room secrets: a tab with a wrong secret never becomes a member, while the tabs with the right
//    one train; and what the MAC costs on the wire.
// 4. A hostile member: one of three training tabs (same room, same secret, its real rank and epoch)
//    sends frames that each break one rule, in each codec (dense, fp16, Top-K, Random-K, with NaN and
//    Infinity payloads): the other two refuse every one with that rule's reason, and the room ends with
//    the parameters, bit for bit, of an unfuzzed room with the same seed.
import { expect, test, type Page } from '@playwright/test';
import { APP_URL, openMeshTab, openMeshTabs, uniqueRoom } from './fixtures';
import { MEMBER_REFUSALS, type MemberKind } from '../src/peer/hostile-frames';
import { expectBackend, finishTraining, openTrainingTabs } from './training';

interface HostileLab {
  status(): { step: number; state: string; error: string | null; room: string };
  metrics(): { losses: number[]; lossSteps: number[]; hashesAgree: boolean | null; bytesReceived: number };
  refused(): { count: number; reasons: Record<string, number> };
  pause(): void;
  mesh: {
    join(room: string, opts: Record<string, unknown>): Promise<{ peerId: string; members: string[] }>;
    fuzz(opts: { count: number; seed?: number; to?: string; ranks?: number[] }): Promise<{ sent: number; byKind: Record<string, number>; ms: number; stopped?: string }>;
    ringStream(bytes: number): Promise<{ ms: number }>;
    status(): { excluded: { peerId: string; reason: string }[]; members: string[]; refusedFrames: number };
    leave(): void;
  };
}
const lab = (page: Page) => page.evaluate(() => (window as unknown as { lab: HostileLab }).lab.status());

async function openTab(page: Page, query: Record<string, string | number>, label: string): Promise<void> {
  page.on('pageerror', (error) => console.error(`[${label}] ${error.message}`));
  await page.goto(`${APP_URL}?${new URLSearchParams(Object.entries(query).map(([k, v]) => [k, String(v)]))}`);
}

test('10,000 hostile frames to two training tabs: all refused, replicas agree, loss falls', async ({ context }) => {
  test.setTimeout(180_000);
  const room = uniqueRoom('hostile');
  // maxrefused=0: never exclude, so that every one of the 10,000 frames reaches the checks.
  const settings = { room, world: 2, model: 'mlp', dataset: 'spirals', steps: 100_000, seed: 5, autostart: 1, maxrefused: 0, autosave: 0 };
  const trainers = [await context.newPage(), await context.newPage()];
  await Promise.all(trainers.map((page, i) => openTab(page, settings, `trainer ${i}`)));
  await Promise.all(trainers.map((page) => page.waitForFunction(() => (window as unknown as { lab: HostileLab }).lab.status().step >= 3, undefined, { timeout: 90_000 })));
  for (const page of trainers) await expectBackend(page, 'webgpu');

  const hostile = await openMeshTab(context, 'hostile');
  await hostile.evaluate((room) => (window as unknown as { lab: HostileLab }).lab.mesh.join(room, { expect: 3, timeoutMs: 60_000 }), room);
  const stepBefore = Math.min(...(await Promise.all(trainers.map(lab))).map((s) => s.step));
  const fuzz = await hostile.evaluate(() => (window as unknown as { lab: HostileLab }).lab.mesh.fuzz({ count: 10_000, seed: 11, ranks: [0, 1] }));
  console.log(`hostile tab: ${fuzz.sent} frames to each of 2 trainers in ${Math.round(fuzz.ms)} ms`, JSON.stringify(fuzz.byKind));
  expect(fuzz.stopped).toBeUndefined();
  expect(fuzz.sent).toBe(10_000);

  // Every frame refused, each with a reason.
  const countAt = (page: Page) => page.evaluate(() => (window as unknown as { lab: HostileLab }).lab.refused().count);
  for (const page of trainers) {
    // wait until the count stops moving (the frames are all in), then it must be exactly 10,000
    let last = -1;
    for (let i = 0; i < 60; i++) {
      const now = await countAt(page);
      if (now === last && now > 0) break;
      last = now;
      await page.waitForTimeout(2000);
    }
    const refused = await page.evaluate(() => (window as unknown as { lab: HostileLab }).lab.refused());
    console.log(`refusals: ${refused.count}`, JSON.stringify(refused.reasons, null, 1));
    expect(refused.count).toBe(10_000);
  }
  const refused = await trainers[0].evaluate(() => (window as unknown as { lab: HostileLab }).lab.refused());
  expect(Object.keys(refused.reasons).length).toBeGreaterThanOrEqual(8);
  expect(Object.values(refused.reasons).reduce((a, b) => a + b, 0)).toBe(10_000);

  // Training went on through it: more steps, replicas bitwise equal at every step, loss falling.
  const target = stepBefore + 20;
  await Promise.all(trainers.map((page) => page.waitForFunction((t) => (window as unknown as { lab: HostileLab }).lab.status().step >= t, target, { timeout: 90_000 })));
  for (const page of trainers) {
    const { status, metrics } = await page.evaluate(() => {
      const l = (window as unknown as { lab: HostileLab }).lab;
      return { status: l.status(), metrics: l.metrics() };
    });
    expect(status.error).toBeNull();
    expect(status.state).toBe('training');
    expect(metrics.hashesAgree).toBe(true);
    const losses = metrics.losses;
    expect(losses.length).toBeGreaterThanOrEqual(3);
    expect(losses[losses.length - 1]).toBeLessThan(losses[0]);
  }
  for (const page of trainers) await page.evaluate(() => (window as unknown as { lab: HostileLab }).lab.pause());
});

test('a peer that keeps sending bad frames is excluded, and the dashboard shows why', async ({ context }) => {
  test.setTimeout(90_000);
  const room = uniqueRoom('exclude');
  const [victim, bystander, hostile] = await openMeshTabs(context, 3);
  const pages = [victim, bystander, hostile];
  await Promise.all(pages.map((page) => page.evaluate((room) => (window as unknown as { lab: HostileLab }).lab.mesh.join(room, { expect: 3, maxRefused: 50, timeoutMs: 60_000 }), room)));
  const hostileId = await hostile.evaluate(() => (window as unknown as { lab: { mesh: { status(): { peerId: string } } } }).lab.mesh.status().peerId);
  const victimId = await victim.evaluate(() => (window as unknown as { lab: { mesh: { status(): { peerId: string } } } }).lab.mesh.status().peerId);
  const fuzz = await hostile.evaluate((to) => (window as unknown as { lab: HostileLab }).lab.mesh.fuzz({ count: 2000, seed: 3, to }), victimId);
  console.log(`hostile tab sent ${fuzz.sent} frames before: ${fuzz.stopped ?? '(not stopped)'}`);

  await expect.poll(() => victim.evaluate(() => (window as unknown as { lab: HostileLab }).lab.mesh.status().excluded), { timeout: 30_000 }).toEqual([
    { peerId: hostileId, reason: expect.stringMatching(/^51 refused frames or signals \(last: .+\)$/) },
  ]);
  // The dashboard's event log shows the exclusion, with its reason.
  await expect(victim.getByText(new RegExp(`excluded peer ${hostileId}`)).first()).toBeVisible();
  // ...and the excluded peer stays out: it is no member any more, while the bystander still is.
  await expect.poll(() => victim.evaluate(() => (window as unknown as { lab: { mesh: { status(): { peers: { peerId: string; state: string }[] } } } }).lab.mesh.status().peers.map((p) => p.peerId))).not.toContain(hostileId);
  const peers = await victim.evaluate(() => (window as unknown as { lab: { mesh: { status(): { peers: { peerId: string; state: string }[] } } } }).lab.mesh.status().peers);
  expect(peers.filter((p) => p.state === 'connected')).toHaveLength(1);
});

test('room secret: a wrong-secret tab never joins; the right-secret tabs train together', async ({ context }) => {
  test.setTimeout(150_000);
  const room = uniqueRoom('secret');
  const settings = { room, world: 2, model: 'mlp', dataset: 'spirals', steps: 15, seed: 2, autostart: 1, autosave: 0 };
  // The intruder is in the room first: it must not be counted as one of the 2 members.
  const intruder = await context.newPage();
  await openTab(intruder, { ...settings, secret: 'guessed' }, 'intruder');
  await intruder.waitForFunction(() => (window as unknown as { lab: HostileLab }).lab.status().state === 'connecting');
  const members = [await context.newPage(), await context.newPage()];
  await Promise.all(members.map((page, i) => openTab(page, { ...settings, secret: 'correct horse battery' }, `member ${i}`)));
  const results = await finishTraining(members, 120_000);
  expect(results.map((r) => r.status.world)).toEqual([2, 2]);
  expect(results[0].hash).toBe(results[1].hash);
  expect(results.every((r) => r.metrics.hashesAgree)).toBe(true);
  expect(results.every((r) => r.metrics.bytesReceived > 0)).toBe(true);
  // With a room secret every frame carries a 16-byte MAC after its 40-byte header, counted on the wire.
  for (const r of results) {
    const wire = r.metrics.wire!;
    expect(wire.wireBytes).toBe(wire.payloadBytes + (40 + 16) * wire.frames);
    expect(wire.payloadBytes).toBeGreaterThanOrEqual(r.metrics.bytesSent);
  }

  const seen = await intruder.evaluate(() => {
    const l = (window as unknown as { lab: HostileLab }).lab;
    return { status: l.status(), refused: l.refused() };
  });
  expect(seen.status.state).toBe('connecting');
  expect(seen.refused.count).toBeGreaterThan(0);
  expect(Object.keys(seen.refused.reasons).join(' ')).toMatch(/bad room MAC/);
  for (const page of members) {
    const refused = await page.evaluate(() => (window as unknown as { lab: HostileLab }).lab.refused());
    expect(Object.keys(refused.reasons).join(' ')).toMatch(/bad room MAC/);
  }
});

test('room secret: 16 MB streams each way complete with and without the per-frame MAC (speeds printed, not compared)', async ({ context }) => {
  test.setTimeout(120_000);
  const bytes = 16 * 1024 * 1024;
  const speed = async (secret?: string) => {
    const pages = await openMeshTabs(context, 2);
    const room = uniqueRoom('mac-speed');
    await Promise.all(pages.map((page) => page.evaluate(([room, secret]) => (window as unknown as { lab: HostileLab }).lab.mesh.join(room, { expect: 2, secret, timeoutMs: 60_000 }), [room, secret] as const)));
    await Promise.all(pages.map((page) => page.evaluate(() => (window as unknown as { lab: HostileLab }).lab.mesh.ringStream(1 << 20)))); // warm-up
    const runs = await Promise.all(pages.map((page) => page.evaluate((n) => (window as unknown as { lab: HostileLab }).lab.mesh.ringStream(n), bytes)));
    for (const page of pages) await page.close();
    return bytes / 1e6 / (Math.max(...runs.map((r) => r.ms)) / 1000);
  };
  const open = await speed();
  const authed = await speed('s3cret');
  console.log(`ring stream, 2 tabs, 16 MB each way: open room ${open.toFixed(1)} MB/s, with room secret ${authed.toFixed(1)} MB/s (ratio ${(authed / open).toFixed(2)})`);
  // ringStream resolves once every message of the stream arrived; speeds vary too much on shared machines to compare.
});

for (const compression of ['none', 'fp16', 'topk', 'randk'] as const) {
  test(`a hostile member (compression ${compression}): every rule-breaking frame refused with its reason; final parameters bitwise those of an unfuzzed room`, async ({ browser }) => {
    test.setTimeout(300_000);
    // maxrefused=0: the member is never excluded, so that every frame reaches the checks.
    const run = { model: 'mlp', dataset: 'spirals', steps: 60, seed: 7, compression, ratio: 0.1, secret: 'member-s3cret', maxrefused: 0, autosave: 0, dashboard: 0 };
    const twinContext = await browser.newContext();
    const twin = await finishTraining(await openTrainingTabs(twinContext, 3, run));
    await twinContext.close();

    const context = await browser.newContext();
    const pages = await openTrainingTabs(context, 3, run);
    await Promise.all(pages.map((page) => page.waitForFunction(() => window.lab.status().step >= 3, undefined, { timeout: 120_000 })));
    const [fuzzer, ...receivers] = pages;
    const fuzz = await fuzzer.evaluate(() => window.lab.fuzzAsMember({ count: 300, seed: 13 }));
    const stepAfter = await fuzzer.evaluate(() => window.lab.status().step);
    console.log(`${compression}: member sent ${fuzz.sent} frames to each of 2 members in ${Math.round(fuzz.ms)} ms (by step ${stepAfter} of ${run.steps})`, JSON.stringify(fuzz.refusals));
    expect(stepAfter).toBeLessThan(run.steps); // the flood arrived while the room trained
    const results = await finishTraining(pages);
    for (const receiver of receivers) {
      const refused = await receiver.evaluate(() => window.lab.refused());
      // Every refusal this tab counted is one of the member's frames, under its kind's reason.
      const counted: Record<string, number> = {};
      for (const [reason, n] of Object.entries(refused.reasons)) {
        const kind = (Object.keys(MEMBER_REFUSALS) as MemberKind[]).find((k) => MEMBER_REFUSALS[k].test(reason));
        expect(kind, `unexpected refusal "${reason}"`).toBeDefined();
        counted[kind!] = (counted[kind!] ?? 0) + n;
      }
      expect(counted).toEqual(fuzz.refusals);
      expect(refused.count).toBe(Object.values(fuzz.refusals).reduce((a, b) => a + b, 0));
    }
    await context.close();
    for (const r of results) {
      expect(r.status.error).toBeNull();
      expect(r.metrics.hashesAgree).toBe(true);
    }
    // Nothing the member sent was summed into the room: the same bits as the room without it.
    expect(results[0].hash).toBe(twin[0].hash);
  });
}
