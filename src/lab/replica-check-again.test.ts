// Checking one step twice on the same ring (after a strategy switch at that step) over the real
// transport, which refuses a message key it has already delivered (fake-mesh.ts: real frames, real
// validation): the second check must be told apart from the first, or its all-gather waits out the
// transport's deadline while the duplicate is refused.
import { describe, expect, it } from 'vitest';
import { DataChannelTransport } from '../peer/datachannel-transport';
import { FakeNet } from '../peer/fake-mesh';
import type { Strategy } from '../parallel/parallel-types';
import { EventBus } from '../shared/events';
import type { LabMetrics } from './api';
import { ReplicaCheck } from './replica-check';
import type { JoinedRoom } from './room';

const DEADLINE_MS = 2_000;

function room(world: number) {
  const net = new FakeNet(Array.from({ length: world }, (_, i) => `tab-${i}`));
  const members = net.nodes.map((n) => n.peerId);
  return net.nodes.map((node, rank) => {
    const transport = new DataChannelTransport(node, { members, deadlineMs: DEADLINE_MS });
    const metrics = {} as LabMetrics;
    const check = new ReplicaCheck({
      bus: new EventBus(),
      metrics,
      room: () => ({ transport, elastic: null }) as unknown as JoinedRoom,
      rank: () => rank,
      strategy: () => ({}) as Strategy,
      params: async () => new Float32Array([1, 2, 3]),
    });
    return { node, check, metrics };
  });
}

describe('ReplicaCheck, the same step twice on one ring', () => {
  it(`checks step 9 again (again: true) at once: nothing refused, both checks agree, well within the ${DEADLINE_MS} ms deadline`, async () => {
    const tabs = room(3);
    await Promise.all(tabs.map((t) => t.check.check(9)));
    const began = performance.now();
    await Promise.all(tabs.map((t) => t.check.check(9, { again: true })));
    expect(performance.now() - began).toBeLessThan(DEADLINE_MS / 2);
    for (const t of tabs) {
      expect(t.node.refused).toEqual([]);
      expect(t.metrics).toMatchObject({ hashesAgree: true, hashChecks: 2 });
    }
  });

  it('without again, the second exchange of step 9 is refused as a duplicate and runs into the deadline (what again prevents)', async () => {
    const tabs = room(3);
    await Promise.all(tabs.map((t) => t.check.check(9)));
    const second = await Promise.allSettled(tabs.map((t) => t.check.check(9)));
    expect(second.some((r) => r.status === 'rejected' && /within 2000 ms/.test(String(r.reason)))).toBe(true);
    expect(tabs.flatMap((t) => t.node.refused).some((reason) => /duplicate message \d+\|9\|1\|/.test(reason))).toBe(true);
  });
});
