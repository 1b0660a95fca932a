// The teacher's view of the class, in real tabs: names typed on joining (a duplicate shown as "name (2)"
// and told so), each tab's backend, step times; and the peers table stays
// inside its panel at phone width (390x844) and on a laptop (1280x800). Screenshots of both go to
// e2e-artifacts/ for a person to look at; the overflow itself is measured, not eyeballed.
import { expect, test, type Page } from '@playwright/test';
import { APP_URL, uniqueRoom } from './fixtures';

const RUN = { model: 'mlp', dataset: 'spirals', steps: 400, batch: 32, seed: 2 };

async function peersPanelFits(page: Page): Promise<{ panel: number; table: number; cells: number }> {
  return page.evaluate(() => {
    const panel = document.querySelector('.panel.peers') as HTMLElement;
    const table = panel.querySelector('table') as HTMLElement;
    // The widest cell's right edge, against the panel's: an id that spills out shows here.
    const right = Math.max(...[...table.querySelectorAll('td, th')].map((c) => c.getBoundingClientRect().right));
    const box = panel.getBoundingClientRect();
    return { panel: panel.clientWidth, table: table.scrollWidth, cells: right - box.left };
  });
}

test('names, backends and step times of the class in the peers table, which fits its panel on a phone and a laptop', async ({ browser }) => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  // Two students typed the same name. (Both on WebGPU: a WebGPU and a CPU tab do not compute bitwise
  // the same sums, so the replica check ends a mixed ring; the CPU column style is PeersTable.test.tsx's.)
  const room = uniqueRoom('view');
  const open = async (extra: Record<string, string>) => {
    const page = await context.newPage();
    const query = new URLSearchParams({ ...Object.fromEntries(Object.entries(RUN).map(([k, v]) => [k, String(v)])), room, world: '2', autostart: '1', ...extra });
    await page.goto(`${APP_URL}?${query}`);
    return page;
  };
  const teacher = await open({ name: 'Ada' });
  const student = await open({ name: 'ada' });
  // Whichever tab joined the room first (the lower peer id) keeps the name; the other is "(2)" and told so.
  await expect(teacher.locator('[data-testid^="name-"]')).toHaveText(/^ada( \(2\))?$/, { timeout: 120_000 });
  await expect(student.locator('[data-testid^="name-"]')).toHaveText(/^Ada( \(2\))?$/, { timeout: 30_000 });
  const seen = [await teacher.locator('[data-testid^="name-"]').textContent(), await student.locator('[data-testid^="name-"]').textContent()];
  expect(seen.filter((n) => n?.endsWith(' (2)')), `names seen: ${seen.join(', ')}`).toHaveLength(1);
  const [later, laterName] = seen[0]!.endsWith(' (2)') ? [student, 'ada'] : [teacher, 'Ada'];
  await expect(later.locator('tr.self .name')).toHaveText(`${laterName} (2)`);
  await expect(later.getByText(`the name "${laterName}" is already taken in this room by a tab that joined earlier: you are shown as "${laterName} (2)"`)).toBeVisible();
  // Which tab computes on what.
  await expect(teacher.locator('[data-testid^="backend-"]')).toHaveText(/^webgpu: /);
  await expect(student.locator('[data-testid^="backend-"]')).toHaveText(/^webgpu: /);
  // Step times arrive with the cards (every 2 s).
  await expect(teacher.locator('tbody tr:not(.self) td').nth(6)).toHaveText(/^\d+ ms/, { timeout: 30_000 });

  for (const viewport of [{ width: 1280, height: 800 }, { width: 390, height: 844 }]) {
    await teacher.setViewportSize(viewport);
    await teacher.locator('.panel.peers').scrollIntoViewIfNeeded();
    const fit = await peersPanelFits(teacher);
    await teacher.locator('.panel.peers').screenshot({ path: `e2e-artifacts/peers-${viewport.width}x${viewport.height}.png` });
    expect(fit.table, `peers table at ${viewport.width}px: ${JSON.stringify(fit)}`).toBeLessThanOrEqual(fit.panel);
    expect(fit.cells, `peers table cells at ${viewport.width}px: ${JSON.stringify(fit)}`).toBeLessThanOrEqual(fit.panel + 1);
  }
  await context.close();
});
