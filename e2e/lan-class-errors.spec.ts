// A certificate that changed under a student's open page: the teacher's lab server restarts with a
// new self-signed certificate (another --cert-dir, as after deleting .lab-cert/), so the student's
// browser, which trusted the old key, can no longer reach the signalling on the page's own origin.
// The page must say so in words a student can act on (reload and accept the new certificate), in the
// page and in window.lab.log(), and stay usable with the link's settings.
// Runs in network namespaces like lan-class.spec.ts (root; fails and says why where they cannot be made).
import { expect, test } from '@playwright/test';
import { namespacesUnavailable } from './netns';
import { lanMachinesPerTest } from './lan-machines';
import { HTTPS_PORT, startLabServer } from './class-network';
import { uniqueRoom } from './fixtures';

const RUN = { model: 'mlp', dataset: 'spirals', steps: 5, batch: 32, seed: 3, backend: 'cpu', world: 1 };
const machines = lanMachinesPerTest();

test('a certificate that changed since the page was opened is named in the page, and nothing the page held is lost', async () => {
  expect(namespacesUnavailable(), 'network namespaces are required for the across-machines tests').toBeNull();
  const lab = machines.start(`le${process.pid % 100000}`, '10.78.0');
  const teacher = lab.addMachine('t', 1);
  const student = lab.addMachine('s1', 2);
  const first = await startLabServer(lab, teacher, { certDir: `${lab.scratchDir}/cert-a` });
  machines.showOnFailure('the first lab server', first.output);

  // The student opens a room link and trains a short run alone through the server (its modules loaded).
  const page = await machines.pageIn(student, first.spki);
  const settings = Object.fromEntries(Object.entries(RUN).map(([k, v]) => [k, String(v)]));
  const room = uniqueRoom('cert');
  await page.goto(`https://${teacher.address}:${HTTPS_PORT}/?${new URLSearchParams({ ...settings, room, autostart: '1' })}`);
  await page.waitForFunction(() => window.lab?.status?.().state === 'done', undefined, { timeout: 120_000 });

  // The server comes back with a new certificate: another key, which the student's browser never trusted.
  await lab.stop(first.server);
  const second = await startLabServer(lab, teacher, { certDir: `${lab.scratchDir}/cert-b` });
  machines.showOnFailure('the second lab server', second.output);
  expect(second.spki).not.toBe(first.spki);

  await page.getByRole('button', { name: 'Start' }).click();
  await expect(page.getByRole('alert')).toContainText('its certificate changed since this page was opened: reload the page and accept the new certificate', {
    timeout: 60_000,
  });
  const log = await page.evaluate(() => window.lab.log().map((l) => l.message));
  expect(log.some((l) => /certificate changed/.test(l)), 'the reason is in window.lab.log() too').toBe(true);
  await expect(page.getByRole('button', { name: 'Start' })).toBeEnabled();
  // Nothing lost: the page keeps the link's room and settings, ready to start once reloaded.
  const config = await page.evaluate(() => window.lab.config());
  expect(config).toMatchObject({ room, model: 'mlp', dataset: 'spirals', steps: RUN.steps });
});
