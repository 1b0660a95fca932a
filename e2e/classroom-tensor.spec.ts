// The classroom steps the textbook tensor-parallel example over the real mesh: two tabs of one room (no
// training) hold the two halves of a two-layer MLP (W1 by columns, W2 by rows); the teacher's tab loads
// the tensor lesson and releases one op per click, through the UI only. After every click both tabs list
// the op, and its numbers equal what this test computes by hand from the shards the tabs show: each
// rank's partial products, the all-reduced output and input gradient, the weight gradients, and each
// tab's check against the unsplit layer. Then the page at phone width.
import { expect, test, type Locator, type Page } from '@playwright/test';
import { mkdirSync } from 'node:fs';
import { expectFitsPhone, loadOpLesson, openClassroomTabs } from './fixtures';

const SHOTS = 'e2e-artifacts/screenshots';

interface M {
  rows: number;
  cols: number;
  data: number[];
}
type Shown = Record<string, M>;

async function matricesIn(locator: Locator): Promise<Shown> {
  const triples = await locator.locator('.lesson-tensor').evaluateAll((spans) =>
    spans.map((s) => [s.getAttribute('data-name')!, JSON.parse(s.getAttribute('data-values')!) as number[], Number(s.getAttribute('data-cols'))] as const),
  );
  return Object.fromEntries(triples.map(([name, data, cols]) => [name, { rows: data.length / cols, cols, data }]));
}

// ---- the layer by hand ----
const make = (rows: number, cols: number, f: (r: number, c: number) => number): M => ({ rows, cols, data: Array.from({ length: rows * cols }, (_, i) => f(Math.floor(i / cols), i % cols)) });
const at = (m: M, r: number, c: number) => m.data[r * m.cols + c];
const mul = (a: M, b: M) => make(a.rows, b.cols, (r, c) => Array.from({ length: a.cols }, (_, k) => at(a, r, k) * at(b, k, c)).reduce((s, v) => s + v, 0));
const tr = (m: M) => make(m.cols, m.rows, (r, c) => at(m, c, r));
const zip = (a: M, b: M, f: (x: number, y: number) => number) => make(a.rows, a.cols, (r, c) => f(at(a, r, c), at(b, r, c)));
const plusRow = (m: M, row: M) => make(m.rows, m.cols, (r, c) => at(m, r, c) + row.data[c]);
const colSums = (m: M) => make(1, m.cols, (_, c) => Array.from({ length: m.rows }, (_, r) => at(m, r, c)).reduce((s, v) => s + v, 0));
const relu = (m: M) => make(m.rows, m.cols, (r, c) => Math.max(0, at(m, r, c)));
const sideBySide = (a: M, b: M) => make(a.rows, a.cols + b.cols, (r, c) => (c < a.cols ? at(a, r, c) : at(b, r, c - a.cols)));
const stacked = (a: M, b: M): M => ({ rows: a.rows + b.rows, cols: a.cols, data: [...a.data, ...b.data] });
const values = (shown: Shown) => Object.fromEntries(Object.entries(shown).map(([k, m]) => [k, m.data]));

test('the teacher steps the two-layer tensor-parallel MLP one op at a time; every op shows the numbers computed here by hand', async ({ browser }) => {
  mkdirSync(SHOTS, { recursive: true });
  const { context, pages } = await openClassroomTabs(browser, 'tensor-class', 2);
  const [teacher, student] = pages;
  const { lessonOf, ranks } = await loadOpLesson(pages, {
    region: /Tensor-parallel lesson/,
    loadLabel: 'Load tensor lesson',
    nextLabel: 'Next tensor op',
    name: 'tensor-lesson',
    steps: 11,
    unit: 'rank',
  });

  // The shards, as both tabs show them; then the whole lesson by hand.
  const shards = [await matricesIn(student.locator('.tensor-lesson-setup tr[data-rank="0"]')), await matricesIn(student.locator('.tensor-lesson-setup tr[data-rank="1"]'))];
  for (const r of [0, 1]) expect(await matricesIn(teacher.locator(`.tensor-lesson-setup tr[data-rank="${r}"]`))).toEqual(shards[r]);
  const { X, b2, target } = shards[0];
  expect(shards[1].X).toEqual(X);
  expect(shards[0].W1_r.cols).toBe(2);
  expect(shards[0].W2_r.rows).toBe(2);
  const Z = shards.map((s) => plusRow(mul(X, s.W1_r), s.b1_r));
  const A = Z.map(relu);
  const P = A.map((a, r) => mul(a, shards[r].W2_r));
  const Psum = zip(P[0], P[1], (x, y) => x + y);
  const Y = plusRow(Psum, b2);
  const dY = zip(Y, target, (y, t) => y - t);
  const dZ = Z.map((z, r) => zip(z, mul(dY, tr(shards[r].W2_r)), (zz, d) => (zz > 0 ? d : 0)));
  const dXr = dZ.map((d, r) => mul(d, tr(shards[r].W1_r)));
  const dX = zip(dXr[0], dXr[1], (x, y) => x + y);
  // The unsplit layer, from the shards put back together.
  const W1 = sideBySide(shards[0].W1_r, shards[1].W1_r);
  const W2 = stacked(shards[0].W2_r, shards[1].W2_r);
  const Zu = plusRow(mul(X, W1), sideBySide(shards[0].b1_r, shards[1].b1_r));
  const Yu = plusRow(mul(relu(Zu), W2), b2);
  const dZu = zip(Zu, mul(zip(Yu, target, (y, t) => y - t), tr(W2)), (z, d) => (z > 0 ? d : 0));
  const dXu = mul(dZu, tr(W1));
  expect(Yu.data).toEqual(Y.data);
  expect(dXu.data).toEqual(dX.data);
  const expected = (kind: string, r: number): Record<string, number[]> =>
    ({
      layer1: { 'Z_r = X W1_r + b1_r': Z[r].data, 'A_r = relu(Z_r)': A[r].data },
      layer2: { 'P_r = A_r W2_r': P[r].data },
      'all-reduce-output': { 'P = sum P_r': Psum.data, 'Y = P + b2': Y.data },
      'layer2-grad': { 'dY = Y - target': dY.data, 'dW2_r = A_r^T dY': mul(tr(A[r]), dY).data, 'db2 = sum rows dY': colSums(dY).data },
      'layer1-grad': { "dZ_r = dY W2_r^T * relu'": dZ[r].data, 'dW1_r = X^T dZ_r': mul(tr(X), dZ[r]).data, 'db1_r = sum rows dZ_r': colSums(dZ[r]).data, 'dX_r = dZ_r W1_r^T': dXr[r].data },
      'all-reduce-input-grad': { 'dX = sum dX_r': dX.data },
      check: { 'unsplit Y': Yu.data, 'unsplit dX': dXu.data, 'max |diff| Y dX dW1_r db1_r dW2_r': [0, 0, 0, 0, 0] },
    })[kind]!;

  const plan = [
    ['layer1', 0], ['layer1', 1], ['layer2', 0], ['layer2', 1], ['all-reduce-output', 'all'],
    ['layer2-grad', 0], ['layer2-grad', 1], ['layer1-grad', 0], ['layer1-grad', 1], ['all-reduce-input-grad', 'all'], ['check', 'all'],
  ] as const;
  for (let step = 1; step <= plan.length; step++) {
    const [kind, owner] = plan[step - 1];
    const runners = owner === 'all' ? [0, 1] : [owner];
    await lessonOf(teacher).getByRole('button', { name: 'Next tensor op' }).click();
    for (const page of pages) {
      await expect(page.getByTestId('tensor-lesson-step')).toHaveAttribute('data-step', String(step));
      await expect(page.locator(`.tensor-lesson-ops li[data-step="${step}"]`)).toHaveCount(runners.length);
    }
    for (const r of runners) {
      const item = (page: Page) => page.locator(`.tensor-lesson-ops li[data-step="${step}"][data-rank="${r}"]`);
      await expect(item(student)).toHaveAttribute('data-kind', kind);
      const shown = values(await matricesIn(item(student)));
      expect(shown, `op ${step}: rank ${r} ${kind}`).toEqual(expected(kind, r));
      expect(values(await matricesIn(item(teacher)))).toEqual(shown);
      // The tab of that rank shows it as its own last op.
      const own = pages[ranks.indexOf(r)].getByTestId('tensor-lesson-own');
      await expect(own).toHaveAttribute('data-step', String(step));
      await expect(own).toHaveAttribute('data-kind', kind);
    }
    if (step === 5) await student.screenshot({ path: `${SHOTS}/classroom-tensor-student.png`, fullPage: true });
  }
  for (const page of pages) await expect(page.getByTestId('tensor-lesson-step')).toHaveText(/Y and dX equal the unsplit layer’s on every tab/);
  await expect(lessonOf(teacher).getByRole('button', { name: 'Next tensor op' })).toBeDisabled();

  await expectFitsPhone(student, lessonOf(student), { path: `${SHOTS}/classroom-tensor-390.png`, of: 'panel' });
  await context.close();
});
