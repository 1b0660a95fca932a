// What the elastic e2e specs share: the run they train, how far from one tab alone a room may end, the
// one-tab reference itself (computed once per run), and waiting for a step across tabs.
import { expect, type Browser, type Page } from '@playwright/test';
import { finishTraining, maxRelativeDifference, openTrainingTabs } from './training';

export const ELASTIC_RUN = { model: 'mlp', dataset: 'mnist', steps: 24, batch: 64, seed: 5 };
// Float32 sums in another order, amplified by Adam over 24 steps. Measured against one tab at 24 steps:
// static 4 tabs 3.1e-7, static 3 tabs (shares 21/21/22, weighted) 5.6e-6; the elastic runs depend on
// the step the newcomer's re-form lands on (more steps at 3 tabs, more difference): 1.97e-5 to 2.55e-5
// measured (ZeRO-3: 1.4-2.1e-5; the parameter server: 1.1-2.4e-5). A step lost or applied twice moves
// the parameters by 1.9e-3 (checked in oneTabReference: at least 10x the tolerance), so 1e-4 keeps 4x
// headroom over the noise and still catches it.
export const ELASTIC_TOLERANCE = 1e-4;

const references = new Map<string, Promise<number[]>>();

/**
 * What one tab alone reaches on `run`'s global batch (computed once per run and browser), after checking
 * that one step less is at least 10x ELASTIC_TOLERANCE away from it, so the tolerance can catch a lost step.
 */
export function oneTabReference(browser: Browser, run: Record<string, string | number> & { steps: number } = ELASTIC_RUN): Promise<number[]> {
  const key = JSON.stringify(run);
  let reference = references.get(key);
  if (!reference) {
    reference = (async () => {
      const solo = await browser.newContext();
      const [full] = await finishTraining(await openTrainingTabs(solo, 1, run));
      const [oneStepShort] = await finishTraining(await openTrainingTabs(solo, 1, { ...run, steps: run.steps - 1 }));
      await solo.close();
      const oneStep = maxRelativeDifference(full.params, oneStepShort.params);
      console.log(`one tab: ${run.steps} steps vs ${run.steps - 1}: max relative parameter difference ${oneStep.toExponential(2)}`);
      expect(oneStep).toBeGreaterThan(10 * ELASTIC_TOLERANCE);
      return full.params;
    })();
    references.set(key, reference);
  }
  return reference;
}

/** Waits until every page trains in a re-formed ring (epoch 2 or later) of `world` tabs; fails on a tab's error. */
export async function waitForNewRing(pages: Page[], world: number, timeoutMs: number): Promise<void> {
  await Promise.all(
    pages.map((page) =>
      page.waitForFunction(
        (world) => {
          const s = window.lab.status();
          if (s.state === 'error') throw new Error(s.error ?? 'error');
          return s.epoch >= 2 && s.world === world && s.state === 'training';
        },
        world,
        { timeout: timeoutMs, polling: 50 },
      ),
    ),
  );
}
