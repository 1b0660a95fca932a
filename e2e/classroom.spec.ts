// Classroom mode over the real mesh: three tabs of one room (no training), the teacher's tab loads a
// lesson and steps it with Next, through the UI only. After every step the students' tabs must show
// what a ring all-reduce holds at that step, computed here independently from the initial vectors, and
// at the end every rank holds the same total.
import { expect, test, type Page } from '@playwright/test';
import { mkdirSync } from 'node:fs';
import { expectTeacherFirst, openClassroomTabs } from './fixtures';

const SHOTS = 'e2e-artifacts/screenshots';
const WORLD = 3;

/** Every rank's numbers as one tab's classroom table shows them, by rank. */
async function shownVectors(page: Page): Promise<number[][]> {
  const rows = await page.locator('.classroom-table tbody tr').evaluateAll((trs) =>
    trs.map((tr) => ({
      rank: Number((tr as HTMLElement).dataset.rank),
      values: [...tr.querySelectorAll('td.cell')].map((td) => Number(td.textContent)),
    })),
  );
  return rows.sort((a, b) => a.rank - b.rank).map((r) => r.values);
}

/** The "received" column: which chunk each rank got, from whom, and its numbers. */
async function shownReceived(page: Page): Promise<{ rank: number; chunk: number; from: number; values: number[] }[]> {
  const texts = await page.locator('.classroom-table tbody tr').evaluateAll((trs) =>
    trs.map((tr) => ({ rank: Number((tr as HTMLElement).dataset.rank), text: tr.querySelector('.received-cell')?.textContent ?? '' })),
  );
  return texts
    .sort((a, b) => a.rank - b.rank)
    .map(({ rank, text }) => {
      const m = /^chunk (\d+) from rank (\d+): \[(.*)\]$/.exec(text);
      if (!m) throw new Error(`rank ${rank}: received cell says "${text}"`);
      return { rank, chunk: Number(m[1]), from: Number(m[2]), values: m[3].split(', ').map(Number) };
    });
}

/**
 * The ring written out by hand (gloo's arithmetic, not src/collective's code): at step s rank r
 * receives chunk (r - s - 2) mod N from rank r - 1, and adds it during the reduce-scatter (s < N - 1)
 * or copies it during the all-gather.
 */
function ringStates(initial: number[][]): number[][][] {
  const n = initial.length;
  const per = initial[0].length / n;
  const states = [initial];
  for (let s = 0; s < 2 * (n - 1); s++) {
    const before = states[s];
    states.push(
      before.map((mine, r) => {
        const from = before[(r - 1 + n) % n];
        const chunk = (((r - s - 2) % n) + n) % n;
        return mine.map((v, i) => (Math.floor(i / per) !== chunk ? v : s < n - 1 ? v + from[i] : from[i]));
      }),
    );
  }
  return states;
}

test('the teacher steps one all-reduce over the mesh; every tab shows the real partial sums', async ({ browser }) => {
  mkdirSync(SHOTS, { recursive: true });
  const { context, pages } = await openClassroomTabs(browser, 'class', WORLD);
  const [teacher, ...students] = pages;
  const classroomOf = (page: Page) => page.getByRole('region', { name: /Classroom/ });

  await classroomOf(teacher).getByRole('button', { name: 'Load lesson' }).click();
  for (const page of pages) await expect(page.getByTestId('classroom-step')).toHaveText(/^Step 0 of 4/);
  await expectTeacherFirst(pages, 'classroom-role');
  // A student's Next cannot move the room.
  await expect(classroomOf(students[0]).getByRole('button', { name: 'Next step' })).toBeDisabled();

  const initial = await shownVectors(students[0]);
  expect(initial).toHaveLength(WORLD);
  expect(initial.every((v) => v.length === 2 * WORLD && v.every((x) => Number.isInteger(x) && x > 0))).toBe(true);
  const expected = ringStates(initial);
  for (const page of pages) expect(await shownVectors(page)).toEqual(initial);
  await classroomOf(teacher).scrollIntoViewIfNeeded();
  await teacher.screenshot({ path: `${SHOTS}/classroom-teacher-loaded.png`, fullPage: true });

  for (let step = 1; step <= 2 * (WORLD - 1); step++) {
    await classroomOf(teacher).getByRole('button', { name: 'Next step' }).click();
    for (const page of [...students, teacher]) {
      await expect(page.getByTestId('classroom-step')).toHaveText(new RegExp(`^Step ${step} of 4`));
      expect(await shownVectors(page)).toEqual(expected[step]);
    }
    // Each rank just got one chunk of its ring predecessor's previous numbers, exactly as sent.
    const per = 2;
    for (const got of await shownReceived(students[1])) {
      expect(got.from).toBe((got.rank - 1 + WORLD) % WORLD);
      expect(got.chunk).toBe((((got.rank - step - 1) % WORLD) + WORLD) % WORLD);
      expect(got.values).toEqual(expected[step - 1][got.from].slice(got.chunk * per, (got.chunk + 1) * per));
    }
    if (step === 2) await students[0].screenshot({ path: `${SHOTS}/classroom-student-reduce-scatter.png`, fullPage: true });
  }

  const totals = initial[0].map((_, i) => initial.reduce((sum, v) => sum + v[i], 0));
  for (const page of pages) {
    expect(await shownVectors(page)).toEqual(Array.from({ length: WORLD }, () => totals));
    await expect(page.getByTestId('classroom-status')).toHaveText('Every rank holds the same total.');
  }
  await expect(classroomOf(teacher).getByRole('button', { name: 'Next step' })).toBeDisabled();
  await students[0].screenshot({ path: `${SHOTS}/classroom-student-done.png`, fullPage: true });

  // Going back shows the recorded steps again (the mesh is not asked to un-send anything).
  await classroomOf(students[1]).getByRole('button', { name: 'Previous step' }).click();
  await expect(students[1].getByTestId('classroom-step')).toHaveText(/^Step 3 of 4/);
  expect(await shownVectors(students[1])).toEqual(expected[3]);
  await context.close();
});
