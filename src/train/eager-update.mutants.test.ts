// Checks of EagerUpdates that mutation testing (npm run mutate) showed missing. eager-update.test.ts
// drives it through whole training steps with real layouts, whose ranges are always well formed, never
// adjacent to an update already made, and always begun; so the guards (an empty or unaligned range, a
// range past the end, adjacent ranges, apply() before begin() or after rollback()), the snapshot taken
// once per step (not before every range), which gaps rest() reports, and when eager updates are
// possible at all could each be wrong without a test failing. Here the class is driven directly.
import { describe, expect, it } from 'vitest';
import { VIEW_ALIGNMENT, viewOf, type DeviceBuffer } from '../engine/backend';
import { CpuBackend } from '../engine/cpu-backend';
import { buildLayout, type ParamLayout } from '../model/layout';
import { EagerUpdates } from './eager-update';
import { Optimizer } from './optimizer';

const A = VIEW_ALIGNMENT;
const zero = { kind: 'constant', value: 0 } as const;
// w [0, A), b [A, A + 10) padded to 2A, c [2A, 3A).
const layout = buildLayout([
  { name: 'w', shape: [A], group: 'g', decay: false, init: zero },
  { name: 'b', shape: [10], group: 'g', decay: false, init: zero },
  { name: 'c', shape: [A], group: 'g', decay: false, init: zero },
]);
const SGD = { kind: 'sgd', lr: 1, momentum: 0, weightDecay: 0 } as const;

function setup() {
  const backend = new CpuBackend();
  const optimizer = new Optimizer(backend, layout, SGD);
  const params = backend.alloc(layout.totalLength, 'params', 'params');
  const grads = backend.alloc(layout.totalLength, 'grads', 'grads');
  backend.write(viewOf(params), Float32Array.from({ length: layout.totalLength }, (_, i) => i));
  backend.fill(viewOf(grads), 0.5);
  const eager = new EagerUpdates(backend, optimizer, params, grads, layout);
  const read = async (buf: DeviceBuffer) => Array.from(await backend.read(viewOf(buf)));
  return { backend, optimizer, params, grads, eager, read };
}

describe('EagerUpdates', () => {
  it('is possible only with the whole state on the same device and full buffers; otherwise the constructor refuses', () => {
    const backend = new CpuBackend();
    const optimizer = new Optimizer(backend, layout, SGD);
    const full = backend.alloc(layout.totalLength, 'p', 'params');
    const short = backend.alloc(A, 's', 'params');
    expect(EagerUpdates.possible(backend, optimizer, full, full)).toBe(true);
    expect(EagerUpdates.possible(backend, optimizer, short, full)).toBe(false);
    expect(EagerUpdates.possible(backend, optimizer, full, short)).toBe(false);
    expect(EagerUpdates.possible(new CpuBackend(), optimizer, full, full)).toBe(false);
    const shard = new Optimizer(backend, layout, SGD, { offset: A, length: layout.totalLength - A });
    const shardParams = backend.alloc(layout.totalLength - A, 'sp', 'params');
    expect(EagerUpdates.possible(backend, shard, shardParams, shardParams)).toBe(false);
    expect(() => new EagerUpdates(backend, optimizer, short, full, layout)).toThrow(
      new RangeError('eager updates need the whole optimizer state on this device and full parameter and gradient buffers (not a ZeRO shard)'),
    );
  });

  it('keeps its rollback copies as workspace memory, and frees them on dispose', () => {
    const backend = new CpuBackend();
    const optimizer = new Optimizer(backend, layout, SGD);
    const params = backend.alloc(layout.totalLength, 'params', 'params');
    const before = backend.memory().workspace;
    const eager = new EagerUpdates(backend, optimizer, params, params, layout);
    expect(backend.memory().workspace - before).toBe(eager.snapshotBytes);
    expect(eager.snapshotBytes).toBe(4 * layout.totalLength * 2);
    eager.dispose();
    expect(backend.memory().workspace).toBe(before);
  });

  it('updates nothing before begin(), nor for an empty or unaligned range; a range past the end is refused; one ending exactly there is not', async () => {
    const { eager } = setup();
    expect(eager.updated).toEqual([]);
    expect(eager.apply({ offset: 0, length: A })).toBe(false);
    eager.begin(1, undefined);
    expect(eager.apply({ offset: 0, length: 0 })).toBe(false);
    expect(eager.apply({ offset: 1, length: A })).toBe(false);
    expect(eager.apply({ offset: 1, length: 2 * A - 1 })).toBe(false);
    expect(eager.updated).toEqual([]);
    expect(() => eager.apply({ offset: 2 * A, length: A + 1 })).toThrow(`range [${2 * A}, ${3 * A + 1}) outside the ${3 * A} parameters`);
    expect(eager.apply({ offset: 2 * A, length: A })).toBe(true);
  });

  it('adjacent ranges are both updated; an overlapping one is refused', () => {
    const { eager } = setup();
    eager.begin(1, undefined);
    expect(eager.apply({ offset: A, length: A })).toBe(true);
    expect(eager.apply({ offset: 0, length: A })).toBe(true);
    expect(eager.apply({ offset: 2 * A, length: A })).toBe(true);
    expect(() => eager.apply({ offset: A, length: 10 })).toThrow(/would be updated twice in one step/);
  });

  it('rollback restores every range to its value before the step (the snapshot is taken once, at the first range), then applies nothing more', async () => {
    const { eager, params, read } = setup();
    const start = await read(params);
    eager.begin(1, undefined);
    eager.apply({ offset: 0, length: A });
    eager.apply({ offset: 2 * A, length: A });
    expect((await read(params))[0]).toBe(start[0] - 0.5);
    expect(await eager.rollback()).toBe(2 * A);
    expect(await read(params)).toEqual(start);
    expect(eager.updated).toEqual([]);
    expect(eager.apply({ offset: A, length: A })).toBe(false);
  });

  it('reports the device time of its updates', async () => {
    const { eager } = setup();
    eager.begin(1, undefined);
    const from = performance.now();
    eager.apply({ offset: 0, length: A });
    const spans = eager.busyWithin(from - 1, performance.now() + 1000);
    expect(spans).toHaveLength(1);
  });

  it('rest() returns the gaps that hold parameters, and leaves out a gap that holds none', () => {
    // The optimizer's layout is 3A long, but only w and c are tensors here: [A, 2A) holds nothing.
    const holes: ParamLayout = { ...layout, entries: layout.entries.filter((e) => e.name !== 'b') };
    const backend = new CpuBackend();
    const optimizer = new Optimizer(backend, layout, SGD);
    const params = backend.alloc(layout.totalLength, 'params', 'params');
    const eager = new EagerUpdates(backend, optimizer, params, params, holes);
    eager.begin(1, undefined);
    eager.apply({ offset: 0, length: A });
    eager.apply({ offset: 2 * A, length: A });
    expect(eager.rest()).toEqual([]);
    eager.begin(2, undefined);
    eager.apply({ offset: 2 * A, length: A });
    expect(eager.rest()).toEqual([{ offset: 0, length: 2 * A }]);
    eager.begin(3, undefined);
    eager.apply({ offset: 0, length: A });
    expect(eager.rest()).toEqual([{ offset: A, length: 2 * A }]);
    // With b in the layout, the middle gap holds it.
    const { eager: withB } = setup();
    withB.begin(1, undefined);
    withB.apply({ offset: 0, length: A });
    withB.apply({ offset: 2 * A, length: A });
    expect(withB.rest()).toEqual([{ offset: A, length: A }]);
  });
});
