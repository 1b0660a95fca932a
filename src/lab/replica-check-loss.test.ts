// The room's mean training loss rides with the replica check's hash exchange: with shares by speed it is
// the share-weighted mean (the global batch's mean loss, what one tab would print), and a zero-share
// tab's NaN loss does not poison it; every tab publishes the same number.
import { describe, expect, it } from 'vitest';
import { createMemoryMesh } from '../collective/memory-transport';
import type { Strategy } from '../parallel/strategy';
import { EventBus, type LabEvent } from '../shared/events';
import { BatchShares } from '../train/batch-shares';
import type { LabMetrics } from './api';
import { ReplicaCheck, roomLoss } from './replica-check';
import type { JoinedRoom } from './room';

/** Each tab checks after `step` steps with its own loss; returns the room-loss events each tab published. */
async function checkRoom(losses: number[], shares: BatchShares | undefined, step: number): Promise<LabEvent[][]> {
  const transports = createMemoryMesh(losses.length);
  const published: LabEvent[][] = losses.map(() => []);
  await Promise.all(
    transports.map((transport, rank) => {
      const bus = new EventBus();
      bus.subscribe((event) => event.type === 'room-loss' && published[rank].push(event));
      const strategy = { hooks: { batchShares: shares }, replicaDigest: null, replicaCheckTraffic: null } as unknown as Strategy;
      const check = new ReplicaCheck({
        bus,
        metrics: {} as LabMetrics,
        room: () => ({ transport, elastic: null }) as unknown as JoinedRoom,
        rank: () => rank,
        strategy: () => strategy,
        params: async () => new Float32Array([1, 2, 3]),
      });
      return check.check(step, { loss: losses[rank] });
    }),
  );
  return published;
}

describe("the room's mean training loss", () => {
  it('with shares [0, 24, 8] and losses [NaN, 1, 0.5]: every tab publishes the share-weighted 0.875 of 2 tabs (the plain mean would be 0.75)', async () => {
    const shares = new BatchShares(32, 3);
    shares.set(3, [0, 24, 8]);
    // After 4 steps done, the step just trained is step 3 (0-based).
    const published = await checkRoom([Number.NaN, 1, 0.5], shares, 4);
    for (const events of published) expect(events).toEqual([{ type: 'room-loss', step: 4, loss: 0.875, ranks: 2 }]);
  });

  it("reads the split of the step just trained, not the next one's", async () => {
    const shares = new BatchShares(32, 3);
    shares.set(3, [0, 24, 8]);
    shares.set(4, [8, 8, 16]);
    const published = await checkRoom([Number.NaN, 1, 0.5], shares, 4);
    expect(published[0][0]).toMatchObject({ loss: 0.875, ranks: 2 });
  });

  it('without shares by speed: the plain mean of the finite losses', async () => {
    const published = await checkRoom([0.5, 1, Number.NaN], undefined, 2);
    for (const events of published) expect(events).toEqual([{ type: 'room-loss', step: 2, loss: 0.75, ranks: 2 }]);
    expect(roomLoss([Number.NaN], undefined)).toBeNull();
    expect(roomLoss([Number.NaN, Number.NaN], [0, 4])).toBeNull();
  });
});
