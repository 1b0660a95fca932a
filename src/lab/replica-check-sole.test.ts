// The replica check at a step only one tab holds (shares=auto, the others parked: parked-tabs.ts): with
// nothing to compare no tab reads or hashes its parameters, and the step counts as held alone, not as a
// check; the exchange of last checked hashes still runs (it carries the loss and paces the parked tabs).
// With two holders they compare as before. Three tabs over the in-memory transport, rank 1 the only
// holder, ranks 0 and 2 parked (they send their last checked hash).
import { describe, expect, it } from 'vitest';
import { createMemoryMesh } from '../collective/memory-transport';
import type { Transport } from '../collective/types';
import type { Strategy } from '../parallel/strategy';
import { EventBus, type LabEvent } from '../shared/events';
import { BatchShares } from '../train/batch-shares';
import type { LabMetrics } from './api';
import { ReplicaCheck, type ParkedCheck } from './replica-check';
import type { JoinedRoom } from './room';

/** Three tabs; each counts its parameter reads and the messages it sends. */
function room() {
  const shares = new BatchShares(24, 3);
  shares.set(1, [0, 24, 0]);
  return createMemoryMesh(3).map((inner, rank) => {
    const counts = { reads: 0, sends: 0 };
    const transport: Transport = Object.assign(Object.create(inner) as Transport, {
      send: (to: number, tag: Parameters<Transport['send']>[1], bytes: Uint8Array) => {
        counts.sends++;
        return inner.send(to, tag, bytes);
      },
    });
    const events: LabEvent[] = [];
    const bus = new EventBus();
    bus.subscribe((event) => events.push(event));
    const strategy = { hooks: { batchShares: shares }, replicaDigest: null, replicaCheckTraffic: null } as unknown as Strategy;
    const metrics = { lastHash: null } as LabMetrics;
    const check = new ReplicaCheck({
      bus,
      metrics,
      room: () => ({ transport, elastic: null }) as unknown as JoinedRoom,
      rank: () => rank,
      strategy: () => strategy,
      params: async () => {
        counts.reads++;
        return new Float32Array([1, 2, 3]);
      },
    });
    const parkedAs = (compared: number[]): ParkedCheck => ({ compared, self: !compared.includes(rank) });
    return { rank, check, metrics, counts, events, parkedAs };
  });
}

describe('the replica check at a step one tab holds alone', () => {
  it('one holder: no tab reads or hashes; the exchange still runs; the step is counted as held alone, not as a check, and no hash of it is published', async () => {
    const tabs = room();
    // Step 5 checked by every tab (a bring-back): every tab holds a checked hash.
    await Promise.all(tabs.map((t) => t.check.check(5)));
    const before = tabs.map((t) => ({ ...t.counts }));
    await Promise.all(tabs.map((t) => t.check.check(6, { parked: t.parkedAs([1]) })));
    tabs.forEach((t, i) => {
      expect(t.counts.reads).toBe(before[i].reads);
      expect(t.counts.sends).toBeGreaterThan(before[i].sends);
      expect(t.metrics.soleHolderSteps).toBe(1);
      expect(t.metrics.hashChecks).toBe(1);
      expect(t.events.filter((e) => e.type === 'hash' && e.step === 6)).toEqual([]);
    });
  });

  it("one holder with a loss to carry (a logged step): every tab publishes the holder's loss as the room's, still without reading", async () => {
    const tabs = room();
    await Promise.all(tabs.map((t) => t.check.check(5)));
    await Promise.all(tabs.map((t) => t.check.check(10, { parked: t.parkedAs([1]), loss: t.rank === 1 ? 0.5 : Number.NaN })));
    for (const t of tabs) {
      expect(t.counts.reads).toBe(1);
      expect(t.metrics.soleHolderSteps).toBe(1);
      expect(t.events.filter((e) => e.type === 'room-loss' && e.step === 10)).toEqual([{ type: 'room-loss', step: 10, loss: 0.5, ranks: 1 }]);
    }
  });

  it('two holders (a backup bring-back): they read, hash and compare; the tab still parked reads nothing', async () => {
    const tabs = room();
    await Promise.all(tabs.map((t) => t.check.check(5)));
    await Promise.all(tabs.map((t) => t.check.check(8, { parked: t.parkedAs([0, 1]) })));
    for (const t of tabs) expect(t.metrics.hashChecks).toBe(2);
    expect(tabs.map((t) => t.counts.reads)).toEqual([2, 2, 1]);
    expect(tabs[2].metrics.soleHolderSteps).toBeUndefined();
  });
});
