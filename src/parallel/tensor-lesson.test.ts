// The two-layer lesson: the op list's order and collectives, its numbers against a loss and gradients
// computed here independently (plain loops, and central finite differences of the loss for the
// gradients), and its refusals of shapes that do not split.
import { describe, expect, it } from 'vitest';
import { formatLesson, lessonValues, type LessonShape, type Matrix, twoLayerLesson } from './tensor-lesson';

const SHAPE: LessonShape = { batch: 2, input: 3, hidden: 4, output: 2, ranks: 2 };

function lossOf(v: ReturnType<typeof lessonValues>): number {
  const { X, W1, b1, W2, b2, target } = v;
  let loss = 0;
  for (let r = 0; r < X.rows; r++) {
    const a: number[] = [];
    for (let j = 0; j < W1.cols; j++) {
      let z = b1.data[j];
      for (let k = 0; k < X.cols; k++) z += X.data[r * X.cols + k] * W1.data[k * W1.cols + j];
      a.push(Math.max(0, z));
    }
    for (let o = 0; o < W2.cols; o++) {
      let y = b2.data[o];
      for (let j = 0; j < a.length; j++) y += a[j] * W2.data[j * W2.cols + o];
      loss += 0.5 * (y - target.data[r * target.cols + o]) ** 2;
    }
  }
  return loss;
}

/** d loss / d m[i] by central differences (float64, step 1e-6). */
function numericGrad(values: ReturnType<typeof lessonValues>, name: 'W1' | 'W2' | 'X', i: number): number {
  const shifted = (delta: number) => {
    const m: Matrix = { ...values[name], data: [...values[name].data] };
    m.data[i] += delta;
    return lossOf({ ...values, [name]: m });
  };
  return (shifted(1e-6) - shifted(-1e-6)) / 2e-6;
}

const find = (lesson: ReturnType<typeof twoLayerLesson>, name: string): Matrix => {
  const op = lesson.ops.find((o) => o.kind === 'check' && o.check?.name === name);
  if (!op) throw new Error(`no check of ${name}`);
  return op.ranks[0][name];
};

describe('the two-layer tensor-parallel lesson', () => {
  for (const ranks of [1, 2, 4]) {
    it(`R = ${ranks}: setup, forward with one all-reduce (g), backward with one all-reduce (f), and every check passing (tolerance 1e-12)`, () => {
      const lesson = twoLayerLesson({ ...SHAPE, ranks });
      expect(lesson.ok).toBe(true);
      expect(lesson.ops.map((o) => o.step)).toEqual(lesson.ops.map((_, i) => i));
      expect(lesson.ops.every((o) => o.ranks.length === ranks)).toBe(true);
      const reduces = lesson.ops.filter((o) => o.kind === 'all-reduce');
      expect(reduces.map((o) => [o.pass, o.collective?.elements])).toEqual([['forward', 2 * 2], ['backward', 2 * 3]]);
      for (const op of reduces) expect(op.collective?.ringBytesPerRank).toBe(Math.round(((2 * (ranks - 1)) / ranks) * op.collective!.elements * 4));
      expect(lesson.ops.filter((o) => o.kind === 'check').map((o) => o.check?.name)).toEqual(['Y', 'loss', 'dW2', 'db2', 'dW1', 'db1', 'dX']);
      const passes = lesson.ops.map((o) => o.pass);
      expect(passes.indexOf('backward')).toBeGreaterThan(passes.lastIndexOf('forward'));
      // Every rank's screen shows hidden units both on and off (the default values are chosen so).
      const active = lesson.ops.find((o) => o.formula.startsWith('A_r'))!.ranks.map((t) => t.A_r.data.filter((v) => v > 0).length);
      if (ranks > 1) expect(active.every((n) => n > 0)).toBe(true);
      expect(active.reduce((a, b) => a + b, 0)).toBeLessThan(2 * 4);
    });
  }

  it('the ranks hold different shards and different partial outputs, which sum to the output without b2', () => {
    const lesson = twoLayerLesson({ ...SHAPE, ranks: 2 });
    const split = lesson.ops.find((o) => o.kind === 'split-columns')!;
    expect(split.ranks[0].W1_r.cols).toBe(2);
    expect(split.ranks[0].W1_r.data).not.toEqual(split.ranks[1].W1_r.data);
    const partial = lesson.ops.find((o) => o.formula.startsWith('P_r'))!;
    const [p0, p1] = partial.ranks.map((t) => t.P_r.data);
    expect(p0).not.toEqual(p1);
    const Y = find(lesson, 'Y').data;
    const b2 = lesson.values.b2.data;
    Y.forEach((y, i) => expect(p0[i] + p1[i] + b2[i % 2]).toBeCloseTo(y, 12));
  });

  it('the loss and the gradients equal an independent computation (loops; central differences within 1e-6)', () => {
    const values = lessonValues({ ...SHAPE, ranks: 4 }, 3);
    const lesson = twoLayerLesson({ ...SHAPE, ranks: 4 }, values);
    expect(find(lesson, 'loss').data[0]).toBeCloseTo(lossOf(values), 12);
    for (const name of ['W1', 'W2', 'X'] as const) {
      const analytic = find(lesson, name === 'X' ? 'dX' : `d${name}`).data;
      analytic.forEach((g, i) => expect(Math.abs(g - numericGrad(values, name, i))).toBeLessThan(1e-6));
    }
    // The example is not trivial: some hidden units are off (relu) and gradients are not all zero.
    expect(find(lesson, 'dW1').data.some((g) => g === 0)).toBe(true);
    expect(find(lesson, 'dW1').data.some((g) => Math.abs(g) > 1e-3)).toBe(true);
    console.log(formatLesson(twoLayerLesson(SHAPE)));
  });

  it('refuses a hidden width that does not split, and values of the wrong shape', () => {
    expect(() => twoLayerLesson({ ...SHAPE, ranks: 3 })).toThrow(/does not split over 3 ranks/);
    const values = lessonValues(SHAPE);
    expect(() => twoLayerLesson(SHAPE, { ...values, W2: values.W1 })).toThrow(/W2 must be 4x2/);
  });
});
