// A class across machines: three Linux network namespaces stand for the teacher's machine and two
// students' machines, joined by a bridge (private addresses that exist only inside them). The teacher's
// machine runs the lab as `npm start` does (HTTPS on the LAN with a certificate generated on first
// start); the teacher's tab creates a room and its link; each student's machine runs its own Chromium,
// which trusts that one certificate by its SPKI fingerprint (not by turning certificate checks off),
// opens the link and nothing else. The students' tabs must be secure contexts with WebGPU
// (SwiftShader), find each other through the same-origin signalling, train together, and end
// bitwise equal to each other and where one tab ends on the same global batch.
import { expect, test, type Page } from '@playwright/test';
import { HTTP_PORT, HTTPS_PORT, startLabServer } from './class-network';
import { lanMachinesPerTest } from './lan-machines';
import { namespacesUnavailable } from './netns';
import { finishTraining, maxRelativeDifference, openTrainingTabs } from './training';

const RUN = { model: 'mlp', dataset: 'spirals', steps: 20, batch: 64, seed: 3 };
// As e2e/data-parallel.spec.ts: float32 sums in another order differ by ~1e-8.
const TOLERANCE = 1e-6;
const SUBNET = '10.77.0';
const machines = lanMachinesPerTest();
// One retry, and only here: in 1 of 3 fresh-clone CI runs (2 cores) the teacher's page, served by the lab
// server just started inside its namespace, never showed its Room panel within the 240 s timeout, while
// the same run's TURN spec (the same start-up) passed. The likely cause: the lab server shared Vite's
// dependency cache (node_modules/.vite) with the suite's dev server, so either could re-optimise
// dependencies under the other's pages; it now has its own (class-network.ts), and on a failure the
// server's output and the teacher page's console are printed. The retry stays until CI confirms; it
// runs the whole scenario again on new namespaces, and a failure there is a real failure.
test.describe.configure({ retries: 1 });

test('two students on their own machines join by the HTTPS room link alone, train on WebGPU and end equal to one tab', async ({ browser }) => {
  const unavailable = namespacesUnavailable();
  // Never a silent pass: where machines cannot be simulated, the test fails and says why.
  expect(unavailable, 'network namespaces are required for the across-machines tests').toBeNull();

  const solo = await browser.newContext();
  const [reference] = await finishTraining(await openTrainingTabs(solo, 1, RUN));
  await solo.close();

  const lab = machines.start(`lc${process.pid % 100000}`, SUBNET);
  {
    const teacher = lab.addMachine('t', 1);
    const students = [lab.addMachine('s1', 2), lab.addMachine('s2', 3)];
    const { spki, output } = await startLabServer(lab, teacher, { certDir: `${lab.scratchDir}/cert` });
    machines.showOnFailure('the lab server', output);

    // The teacher, on the teacher's machine: its own tab over plain http on loopback.
    const teacherPage = await machines.pageIn(teacher, spki);
    const settings = new URLSearchParams(Object.entries({ ...RUN, world: 2 }).map(([key, value]) => [key, String(value)]));
    await teacherPage.goto(`http://127.0.0.1:${HTTP_PORT}/?${settings}`);
    await teacherPage.getByRole('button', { name: 'Create room' }).click();
    await teacherPage.getByLabel(/start training at once/).check();
    const link = (await teacherPage.getByTestId('room-link').getAttribute('href'))!;
    console.log(`room link: ${link}`);
    const url = new URL(link);
    expect(url.origin).toBe(`https://${teacher.address}:${HTTPS_PORT}`);
    expect(url.searchParams.get('signal')).toBe(`wss://${teacher.address}:${HTTPS_PORT}/signal`);
    await expect(teacherPage.getByTestId('room-reach')).toHaveCount(0);
    await expect(teacherPage.getByAltText(`QR code of the room link ${link}`)).toBeVisible();

    // The students, each on its own machine, open the link and nothing else.
    const pages: Page[] = [];
    for (const student of students) pages.push(await machines.pageIn(student, spki));
    const firstStepMs = await Promise.all(
      pages.map(async (page, i) => {
        const opened = Date.now();
        await page.goto(link);
        await page.waitForFunction(
          () => {
            const status = window.lab?.status?.();
            if (status?.state === 'error') throw new Error(status.error ?? 'unknown error');
            return (status?.step ?? 0) >= 1;
          },
          undefined,
          { timeout: 180_000, polling: 100 },
        );
        const ms = Date.now() - opened;
        console.log(`student ${i + 1} (${students[i].address}): ${ms} ms from opening the link to its first step`);
        return ms;
      }),
    );
    expect(firstStepMs.every((ms) => ms > 0)).toBe(true);

    // Each student's peers table names the link's path: direct on this LAN (no STUN/TURN configured).
    for (const page of pages) await expect(page.locator('[data-testid^="path-"]')).toHaveText('host', { timeout: 30_000 });
    // At phone width the peers table fits its panel (long ids are cut, not spilled).
    await pages[0].setViewportSize({ width: 390, height: 844 });
    const peersPanel = pages[0].locator('.panel.peers');
    const overflow = await peersPanel.evaluate((panel) => panel.scrollWidth - panel.clientWidth);
    await peersPanel.screenshot({ path: 'e2e-artifacts/screenshots/lan-class-peers-390.png' });
    expect(overflow, 'peers table wider than its panel at 390 px').toBeLessThanOrEqual(0);

    for (const page of pages) {
      expect(await page.evaluate(() => window.isSecureContext && 'gpu' in navigator)).toBe(true);
    }
    const results = await finishTraining(pages);
    for (const [i, r] of results.entries()) {
      expect(r.status.backend?.kind, `student ${i + 1} trains on WebGPU`).toBe('webgpu');
      expect(r.status.world).toBe(2);
      expect(r.status.step).toBe(RUN.steps);
      expect(r.metrics.hashesAgree).toBe(true);
      expect(r.metrics.bytesSent).toBeGreaterThan(0);
      expect(r.hash).toBe(results[0].hash);
    }
    const difference = maxRelativeDifference(reference.params, results[0].params);
    console.log(`2 students vs 1 tab: max relative parameter difference ${difference.toExponential(2)}`);
    expect(difference).toBeLessThan(TOLERANCE);
  }
});
