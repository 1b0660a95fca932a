// What ZeRO-3 buys, by the backend's real allocations: a deeper MLP on 4 ranks holds well under half of
// what plain data parallelism holds per rank (shards of parameters, gradients and moments, plus ONE
// layer-sized slot and a small staging buffer), and the budget's prediction, made from the plain run's
// memory, is what stage 3 then really holds. Prints the figures per kind:
//   npx vitest run --project unit src/parallel/zero/zero-memory.test.ts
import { describe, expect, it } from 'vitest';
import type { MemoryKind } from '../../engine/backend';
import { testConfig, trainRoom, type RoomResult } from '../../lab/parallel-test-support';
import { predictBytes, totalBytes } from './budget';
import { largestGroup } from './shard-storage';
import { STAGING_FLOATS } from './zero-sync';

const WORLD = 4;
// Five hidden layers of 256: about 264 K parameters in groups of at most 66 K.
const SIZES = [2, 256, 256, 256, 256, 256, 3];

async function room(zero: 0 | 2 | 3): Promise<RoomResult> {
  return trainRoom(WORLD, testConfig({ zero, steps: 2 }), { recipe: { model: { sizes: SIZES } } });
}

const kinds = (m: Record<MemoryKind, number>) =>
  (Object.keys(m) as MemoryKind[]).filter((k) => m[k] > 0).map((k) => `${k} ${m[k]}`).join(', ');

describe('ZeRO-3 memory per rank, by real allocations', () => {
  it('a deeper MLP on 4 ranks holds under 40% of plain data parallelism; the budget predicts it', async () => {
    const [plain, three] = [await room(0), await room(3)];
    const layout = plain.ranks[0].run.model.layout;
    const P = layout.totalLength;
    const plainBytes = totalBytes(plain.memory[0]);
    console.log(`P = ${P} floats, largest layer ${largestGroup(layout)}, ${WORLD} ranks`);
    console.log(`plain  ${plainBytes} bytes per rank: ${kinds(plain.memory[0])}`);
    three.memory.forEach((m, rank) => {
      const bytes = totalBytes(m);
      console.log(`zero=3 rank ${rank}: ${bytes} bytes (${((100 * bytes) / plainBytes).toFixed(1)}% of plain): ${kinds(m)}`);
      expect(bytes).toBeLessThan(0.4 * plainBytes);
      // The shards: a quarter of the vector each (whole 64-float blocks), moments twice that.
      expect(Math.abs(m.params / 4 - P / WORLD)).toBeLessThanOrEqual(64);
      expect(m.optimizer).toBe(2 * m.params);
      // Workspace apart from the trainer's own: one layer slot, the staging buffer, the clip scalar.
      const lent = m.workspace - plain.memory[rank].workspace;
      expect(lent).toBe(4 * (largestGroup(layout) + STAGING_FLOATS + 64));
      expect(m.activations).toBe(plain.memory[rank].activations);
    });
    // The prediction the session makes before the first step, from the plain run's memory.
    const predicted = predictBytes(layout, WORLD, 3, plain.memory[0], 0, { residentGroups: 1 });
    const real = Math.max(...three.memory.map(totalBytes));
    expect(Math.abs(predicted - real)).toBeLessThanOrEqual(4 * 64 * 2); // the clip scalar, a block of shard padding
    // ...and it trained: the same number of steps, the loss of the last step close to plain's
    // (parity within 1e-5 is zero-hooks.test.ts's job).
    const lastLoss = (r: RoomResult) => r.ranks[0].steps[r.ranks[0].steps.length - 1];
    expect(lastLoss(three).step).toBe(2);
    expect(Math.abs(lastLoss(three).loss - lastLoss(plain).loss)).toBeLessThan(1e-4);
  });

  it('stage 2 holds one gradient slot beside full parameters, as predicted', async () => {
    const [plain, two] = [await room(0), await room(2)];
    const layout = plain.ranks[0].run.model.layout;
    const predicted = predictBytes(layout, WORLD, 2, plain.memory[0], 0, { residentGroups: 1 });
    const real = Math.max(...two.memory.map(totalBytes));
    expect(Math.abs(predicted - real)).toBeLessThanOrEqual(4 * 64 * 2);
    expect(two.memory[0].params).toBe(plain.memory[0].params);
    expect(two.memory[0].workspace - plain.memory[0].workspace).toBe(4 * (largestGroup(layout) + STAGING_FLOATS + 64));
  });
});
