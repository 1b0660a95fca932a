import { describe, expect, it } from 'vitest';
import { syntheticData } from '../data/synthetic';
import { VIEW_ALIGNMENT, viewOf } from '../engine/backend';
import { CpuBackend } from '../engine/cpu-backend';
import { defaults, type ClassifierRecipe } from './defaults';
import { EagerUpdates } from './eager-update';
import { classifierRun, type TrainerExtras } from './recipes';
import type { GradSyncContext } from './trainer';

const data = syntheticData({ kind: 'spirals', seed: 3 });
const noClip: ClassifierRecipe = { ...defaults.synthetic, globalBatch: 16, clipNorm: 0 };

function build(recipe: ClassifierRecipe, extras: TrainerExtras) {
  const backend = new CpuBackend();
  const run = classifierRun(backend, data, recipe, undefined, { eagerUpdates: true, ...extras });
  /** Parameters and every optimizer state buffer, as numbers. */
  const state = async () =>
    Promise.all([run.model.params, ...run.optimizer.stateBuffers().map((s) => s.buf)].map(async (buf) => Array.from(await backend.read(viewOf(buf)))));
  return { backend, run, state };
}

/** A sync that hands the trainer these ranges to update eagerly (and counts what it accepted). */
function eagerSync(ranges: { offset: number; length: number }[], accepted: boolean[] = []) {
  return async (ctx: GradSyncContext) => {
    for (const r of ranges) accepted.push(ctx.applyUpdate?.(r) ?? false);
  };
}

describe('eager updates (the optimizer applied range by range during the gradient sync)', () => {
  it('are bitwise the update of the whole buffer after the sync, over several steps', async () => {
    const A = VIEW_ALIGNMENT;
    const deferred = build(noClip, { gradSync: async () => undefined });
    const accepted: boolean[] = [];
    // Out of order, with gaps (the trainer updates the rest after the sync).
    const eager = build(noClip, { gradSync: eagerSync([{ offset: 2 * A, length: 3 * A }, { offset: 0, length: A }], accepted) });
    for (let i = 0; i < 3; i++) {
      await deferred.run.trainer.trainStep();
      await eager.run.trainer.trainStep();
    }
    expect(accepted).toEqual([true, true, true, true, true, true]);
    const [a, b] = [await deferred.state(), await eager.state()];
    expect(b).toEqual(a);
    const start = build(noClip, {});
    expect((await start.state())[0]).not.toEqual(a[0]); // the steps did move the parameters
  });

  it('are not offered with global-norm clipping, to a rank that does not update (parameter-server worker), or to a sync that did not ask', async () => {
    const offered: boolean[] = [];
    const probe = async (ctx: GradSyncContext) => {
      offered.push(ctx.applyUpdate !== undefined);
    };
    await build({ ...noClip, clipNorm: 1 }, { gradSync: probe }).run.trainer.trainStep();
    await build(noClip, { gradSync: probe, localUpdate: false }).run.trainer.trainStep();
    await build(noClip, { gradSync: probe, eagerUpdates: false }).run.trainer.trainStep();
    const asked = build(noClip, { gradSync: probe });
    await asked.run.trainer.trainStep();
    expect(offered).toEqual([false, false, false, true]);
    // The copies for rollback: parameters, Adam's m and v.
    expect(asked.run.trainer.eagerSnapshotBytes).toBe(3 * 4 * asked.run.model.layout.totalLength);
  });

  it('leave a range off VIEW_ALIGNMENT boundaries to the update after the sync, and refuse a range twice', async () => {
    const backend = new CpuBackend();
    const { model, optimizer } = classifierRun(backend, data, noClip);
    const eager = new EagerUpdates(backend, optimizer, model.params, model.grads, model.layout);
    const total = model.layout.totalLength;
    eager.begin(1, undefined);
    expect(eager.apply({ offset: 3, length: VIEW_ALIGNMENT })).toBe(false);
    expect(eager.apply({ offset: 0, length: VIEW_ALIGNMENT + 1 })).toBe(false);
    expect(eager.apply({ offset: VIEW_ALIGNMENT, length: VIEW_ALIGNMENT })).toBe(true);
    expect(() => eager.apply({ offset: 0, length: 2 * VIEW_ALIGNMENT })).toThrow(/twice/);
    expect(eager.rest()).toEqual([
      { offset: 0, length: VIEW_ALIGNMENT },
      { offset: 2 * VIEW_ALIGNMENT, length: total - 2 * VIEW_ALIGNMENT },
    ]);
    // Closed with the step: nothing more is updated until the next begin().
    expect(eager.apply({ offset: 2 * VIEW_ALIGNMENT, length: VIEW_ALIGNMENT })).toBe(false);
    eager.dispose();
  });

  it('take a range that ends inside the padding after a tensor to the next boundary', async () => {
    const backend = new CpuBackend();
    const { model, optimizer } = classifierRun(backend, data, noClip);
    const eager = new EagerUpdates(backend, optimizer, model.params, model.grads, model.layout);
    const [w1, b1, , , , b3] = model.layout.entries;
    expect(b1.offset + b1.length).toBeLessThan(2 * VIEW_ALIGNMENT); // padding follows b1...
    expect(b3.offset + b3.length).toBeLessThan(model.layout.totalLength); // ...and the last tensor
    eager.begin(1, undefined);
    expect(eager.apply({ offset: b1.offset, length: b1.length })).toBe(true);
    expect(eager.apply({ offset: b3.offset, length: b3.length })).toBe(true);
    // A range ending inside a tensor is refused whole.
    expect(eager.apply({ offset: w1.offset, length: w1.length - 1 })).toBe(false);
    expect(eager.rest()).toEqual([
      { offset: 0, length: w1.length },
      { offset: 2 * VIEW_ALIGNMENT, length: b3.offset - 2 * VIEW_ALIGNMENT },
    ]);
    eager.dispose();
  });

  it('a sync that fails after updating some ranges leaves the step unapplied, and the redone step is exact', async () => {
    let fail = false;
    const ranges = [{ offset: 0, length: 2 * VIEW_ALIGNMENT }];
    const logs: string[] = [];
    const flaky = build(noClip, {
      gradSync: async (ctx) => {
        await eagerSync(ranges)(ctx);
        if (fail) throw new Error('rank 2 lost mid-all-reduce');
      },
      onEvent: (e) => {
        if (e.type === 'log') logs.push(e.message);
      },
    });
    const steady = build(noClip, { gradSync: eagerSync(ranges) });
    await flaky.run.trainer.trainStep();
    await steady.run.trainer.trainStep();
    const before = await flaky.state();

    fail = true;
    await expect(flaky.run.trainer.trainStep()).rejects.toThrow(/lost mid-all-reduce/);
    expect(await flaky.state()).toEqual(before);
    expect(flaky.run.trainer.step).toBe(1);
    expect(logs).toEqual([`step 2 not applied: the gradient sync failed after ${2 * VIEW_ALIGNMENT} parameters were updated early; they were restored`]);

    fail = false;
    await flaky.run.trainer.trainStep();
    await steady.run.trainer.trainStep();
    expect(await flaky.state()).toEqual(await steady.state());
    // The failed step had started the next step's forward too (forward-prefetch.ts): it was dropped with it.
    expect(steady.run.trainer.prefetchedSteps).toBe(1);
    expect(flaky.run.trainer.prefetchedSteps).toBe(1);
  });
});
