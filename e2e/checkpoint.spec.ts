// Checkpoints in the real app (WebGPU on SwiftShader): a checkpoint taken mid-run and loaded into a
// fresh tab, and a run resumed from IndexedDB (resume=1) after its tab was closed mid-run, both end
// bitwise equal to the run that never stopped; a corrupt file is refused and the run keeps its state.
import { expect, test, type Page } from '@playwright/test';
import { APP_URL } from './fixtures';
import { finishTraining } from './training';

interface CheckpointLab {
  status(): { step: number; state: string };
  checkpoint(): Promise<string>;
  loadCheckpoint(data: string, opts?: { mode?: 'resume' | 'finetune' }): Promise<{ step: number; model: string }>;
  storedCheckpoints(): Promise<{ key: string; step: number; bytes: number }[]>;
  paramsHash(): Promise<string>;
}
const RUN = { model: 'mlp', dataset: 'spirals', steps: 40, seed: 3, backend: 'webgpu' };

async function open(page: Page, settings: Record<string, string | number>, label: string): Promise<Page> {
  page.on('pageerror', (error) => console.error(`[${label}] ${error.message}`));
  await page.goto(`${APP_URL}?${new URLSearchParams(Object.entries({ ...RUN, ...settings }).map(([k, v]) => [k, String(v)]))}`);
  await page.waitForFunction(() => typeof (window as unknown as { lab?: CheckpointLab }).lab?.checkpoint === 'function');
  return page;
}

const stepAtLeast = (page: Page, step: number) =>
  page.waitForFunction((s) => (window as unknown as { lab: CheckpointLab }).lab.status().step >= s, step, { timeout: 60_000, polling: 20 });

test('save mid-run, load into a fresh tab, resume from IndexedDB: all end where the unbroken run ends', async ({ context }) => {
  test.setTimeout(120_000);
  // The unbroken run, with a checkpoint taken (between two steps) while it trains.
  const straight = await open(await context.newPage(), { autostart: 1, autosave: 0 }, 'straight');
  await stepAtLeast(straight, 10);
  const saved = await straight.evaluate(() => (window as unknown as { lab: CheckpointLab }).lab.checkpoint());
  const [reference] = await finishTraining([straight]);
  expect(reference.status.step).toBe(RUN.steps);

  // A fresh tab loads the file and trains the rest.
  const loaded = await open(await context.newPage(), { autosave: 0 }, 'loaded');
  const summary = await loaded.evaluate((b64) => (window as unknown as { lab: CheckpointLab }).lab.loadCheckpoint(b64), saved);
  expect(summary.step).toBeGreaterThanOrEqual(10);
  expect(summary.step).toBeLessThan(RUN.steps);
  const [resumed] = await finishTraining([loaded]);
  expect(resumed.metrics.lossSteps[0]).toBeGreaterThan(summary.step);
  expect(resumed.hash).toBe(reference.hash);

  // A corrupt file is refused with the reason; the tab keeps what it had.
  const bytes = Buffer.from(saved, 'base64');
  bytes[bytes.length - 64] ^= 0x40;
  const refusal = await loaded.evaluate(
    (b64) => (window as unknown as { lab: CheckpointLab }).lab.loadCheckpoint(b64).then(() => 'loaded', (e: Error) => e.message),
    bytes.toString('base64'),
  );
  expect(refusal).toMatch(/corrupt or truncated/);
  expect(await loaded.evaluate(() => (window as unknown as { lab: CheckpointLab }).lab.status())).toMatchObject({ state: 'done', step: RUN.steps });
  expect(await loaded.evaluate(() => (window as unknown as { lab: CheckpointLab }).lab.paramsHash())).toBe(reference.hash);

  // Autosave every 5 steps to IndexedDB; the tab is closed mid-run; resume=1 continues from the save.
  const interrupted = await open(await context.newPage(), { autostart: 1, autosave: 5 }, 'interrupted');
  await stepAtLeast(interrupted, 12);
  const stored = await interrupted.evaluate(() => (window as unknown as { lab: CheckpointLab }).lab.storedCheckpoints());
  await interrupted.close();
  expect(stored).toHaveLength(1);
  expect(stored[0].key).toBe('mlp/spirals/seed3/world1/rank0');
  expect(stored[0].step % 5).toBe(0);
  expect(stored[0].step).toBeGreaterThanOrEqual(10);
  const again = await open(await context.newPage(), { autostart: 1, autosave: 5, resume: 1 }, 'resume');
  const [fromStorage] = await finishTraining([again]);
  expect(fromStorage.metrics.lossSteps[0]).toBeGreaterThan(stored[0].step);
  expect(fromStorage.hash).toBe(reference.hash);
  const last = await again.evaluate(() => (window as unknown as { lab: CheckpointLab }).lab.storedCheckpoints());
  expect(last.map((s) => s.step)).toEqual([RUN.steps]);
});
