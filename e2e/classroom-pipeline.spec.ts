// The classroom steps a pipeline schedule over the real mesh: two tabs of one room (no training) are the
// two stages of a two-layer linear model; the teacher's tab loads the pipeline lesson and releases one
// op per click, through the UI only: GPipe with 2 micro-batches (what Load runs unless the teacher
// picks otherwise), then, picked in the panel, 1F1B with 3. After every click both tabs show the op
// just run, and the tab that ran it shows it as its own, with the numbers it computed, sent or
// received: checked against the model computed here by hand from the setup the tabs show. At the end
// each stage's ops, in the order they ran, are its list of the schedule picked. Then the page at
// phone width.
import { expect, test, type Locator, type Page } from '@playwright/test';
import { mkdirSync } from 'node:fs';
import { pipelineSchedules } from '../src/collective/pipeline-schedules';
import { expectFitsPhone, loadOpLesson, openClassroomTabs } from './fixtures';

const SHOTS = 'e2e-artifacts/screenshots';

type Tensors = Record<string, number[]>;

async function tensorsIn(locator: Locator): Promise<Tensors> {
  const pairs = await locator
    .locator('.lesson-tensor')
    .evaluateAll((spans) => spans.map((s) => [s.getAttribute('data-name')!, JSON.parse(s.getAttribute('data-values')!) as number[]] as const));
  return Object.fromEntries(pairs);
}

const setupOf = (page: Page, stage: number) => tensorsIn(page.locator(`.pipeline-lesson-setup tr[data-stage="${stage}"]`));

/** y = W x with W row-major 2 x 2; transposed: W^T x. */
const mv = (w: number[], x: number[], transpose = false) => [0, 1].map((i) => [0, 1].reduce((s, j) => s + (transpose ? w[j * 2 + i] : w[i * 2 + j]) * x[j], 0));
const outer = (g: number[], x: number[]) => [g[0] * x[0], g[0] * x[1], g[1] * x[0], g[1] * x[1]];
const add = (a: number[], b: number[]) => a.map((v, i) => v + b[i]);

/** GPipe, 2 stages, 2 micro-batches, written out (forward all, then backward all; messages around them). */
const GPIPE_OPS = [
  ['forward 0', 'send-activation 0', 'forward 1', 'send-activation 1', 'recv-grad 0', 'backward 0', 'recv-grad 1', 'backward 1'],
  ['recv-activation 0', 'forward 0', 'recv-activation 1', 'forward 1', 'backward 0', 'send-grad 0', 'backward 1', 'send-grad 1'],
];

const LESSON_PANEL = { region: /Pipeline lesson/, loadLabel: 'Load pipeline lesson', nextLabel: 'Next op', name: 'pipeline-lesson', unit: 'stage' } as const;

/**
 * Releases every op of the lesson loaded on `pages` (teacher first; `stages[i]` is tab i's stage) and
 * checks each against the model by hand; returns each stage's ops in the order they ran.
 */
async function stepThrough(pages: Page[], stages: number[], micro: number, shotAt?: number): Promise<string[][]> {
  const [teacher, student] = pages;
  const steps = 8 * micro;
  const tabOfStage = (s: number) => pages[stages.indexOf(s)];
  const lessonOf = (page: Page) => page.getByRole('region', { name: LESSON_PANEL.region });
  // The model by hand, from the setup the tabs show (both tabs show the same).
  const [s0, s1] = [await setupOf(student, 0), await setupOf(student, 1)];
  expect(await setupOf(teacher, 0)).toEqual(s0);
  expect(await setupOf(teacher, 1)).toEqual(s1);
  const hand = Array.from({ length: micro }, (_, m) => {
    const h = mv(s0.W, s0[`x${m}`]);
    const y = mv(s1.W, h);
    const g = y.map((v, i) => v - s1[`target${m}`][i]);
    return { x: s0[`x${m}`], h, y, g, loss: 0.5 * (g[0] ** 2 + g[1] ** 2), gh: mv(s1.W, g, true) };
  });
  const weightGrad = [
    [0, 0, 0, 0],
    [0, 0, 0, 0],
  ];
  const ran: string[][] = [[], []];

  for (let step = 1; step <= steps; step++) {
    await lessonOf(teacher).getByRole('button', { name: 'Next op' }).click();
    for (const page of pages) await expect(page.getByTestId('pipeline-lesson-step')).toHaveAttribute('data-step', String(step));
    const latest = await student.locator(`.pipeline-lesson-ops li[data-step="${step}"]`);
    const stage = Number(await latest.getAttribute('data-stage'));
    const owner = tabOfStage(stage);
    const own = owner.getByTestId('pipeline-lesson-own');
    await expect(own).toHaveAttribute('data-step', String(step));
    const kind = (await own.getAttribute('data-kind'))!;
    const m = Number(await own.getAttribute('data-micro'));
    ran[stage].push(`${kind} ${m}`);
    const shown = await tensorsIn(own);
    // Both tabs list the same numbers for the op.
    expect(await tensorsIn(latest)).toEqual(shown);
    expect(await tensorsIn(tabOfStage(1 - stage).locator(`.pipeline-lesson-ops li[data-step="${step}"]`))).toEqual(shown);
    const e = hand[m];
    if (kind === 'backward') weightGrad[stage] = add(weightGrad[stage], stage === 1 ? outer(e.g, e.h) : outer(e.gh, e.x));
    const expected: Record<string, Tensors> = {
      '0 forward': { input: e.x, output: e.h },
      '0 send-activation': { activation: e.h },
      '1 recv-activation': { activation: e.h },
      '1 forward': { input: e.h, output: e.y, loss: [e.loss] },
      '1 backward': { 'output grad': e.g, 'input grad': e.gh, 'W grad (sum)': weightGrad[1] },
      '1 send-grad': { gradient: e.gh },
      '0 recv-grad': { gradient: e.gh },
      '0 backward': { 'output grad': e.gh, 'W grad (sum)': weightGrad[0] },
    };
    expect(shown, `op ${step}: stage ${stage} ${kind} of micro-batch ${m}`).toEqual(expected[`${stage} ${kind}`]);
    if (step === shotAt) await student.screenshot({ path: `${SHOTS}/classroom-pipeline-student.png`, fullPage: true });
  }
  await expect(teacher.getByTestId('pipeline-lesson-step')).toHaveText(/The pipeline step is complete/);
  await expect(lessonOf(teacher).getByRole('button', { name: 'Next op' })).toBeDisabled();
  return ran;
}

test('the teacher steps a 2-stage GPipe, then a 1F1B, one op at a time; each tab shows the op it ran with the numbers it computed', async ({ browser }) => {
  test.setTimeout(180_000);
  mkdirSync(SHOTS, { recursive: true });
  const { context, pages } = await openClassroomTabs(browser, 'pipe-class', 2);
  const [teacher, student] = pages;
  // Load as it comes: GPipe, 2 micro-batches. Which tab is which stage: the role line says.
  const { lessonOf, ranks: stages } = await loadOpLesson(pages, { ...LESSON_PANEL, steps: 16 });
  await expect(student.getByTestId('pipeline-lesson-role')).toContainText('(gpipe, 2 micro-batches)');
  expect(await stepThrough(pages, stages, 2, 6)).toEqual(GPIPE_OPS);

  // The teacher picks 1F1B with 3 micro-batches; Load replaces the lesson on every tab.
  await lessonOf(teacher).getByRole('combobox', { name: /Schedule/ }).selectOption('1f1b');
  await lessonOf(teacher).getByRole('combobox', { name: /Micro-batches/ }).selectOption('3');
  const again = await loadOpLesson(pages, { ...LESSON_PANEL, steps: 24 });
  for (const page of pages) await expect(page.getByTestId('pipeline-lesson-role')).toContainText('(1f1b, 3 micro-batches)');
  const ran = await stepThrough(pages, again.ranks, 3);
  // Each stage ran 1F1B's list: stage 1 a backward right after each forward, stage 0 a forward between backwards.
  expect(ran).toEqual(pipelineSchedules('1f1b', 2, 3).map((list) => list.ops.map((op) => `${op.kind} ${op.micro}`)));
  expect(ran[1].filter((op) => op.startsWith('forward') || op.startsWith('backward'))).toEqual(['forward 0', 'backward 0', 'forward 1', 'backward 1', 'forward 2', 'backward 2']);

  await expectFitsPhone(student, lessonOf(student), { path: `${SHOTS}/classroom-pipeline-390.png`, of: 'page' });
  await context.close();
});
