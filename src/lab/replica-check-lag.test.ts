// The replica check with a lag (shares by speed: replica-check.ts SHARES_CHECK_LAG): a tab may run that
// many steps ahead of a slower replica without waiting for its hashes, is held at the lag, and a
// disagreement is still found (late) and names the step whose replicas first differed. Two tabs over
// the in-memory transport, each with its own ReplicaCheck, as the run loop drives them (session.ts
// trainOneStep: settleBehind, then check alongside the next step).
import { describe, expect, it } from 'vitest';
import { createMemoryMesh } from '../collective/memory-transport';
import type { Strategy } from '../parallel/strategy';
import { EventBus } from '../shared/events';
import type { LabMetrics } from './api';
import { ReplicasDisagree } from './overlapped-exchange';
import { ReplicaCheck } from './replica-check';
import type { JoinedRoom } from './room';

const LAG = 3;

/** One tab per rank; `paramsAfter(rank, step)` is what that tab holds after `step` steps. */
function tabs(paramsAfter: (rank: number, step: number) => number[]) {
  const transports = createMemoryMesh(2);
  return transports.map((transport, rank) => {
    let step = 0;
    const metrics = {} as LabMetrics;
    const strategy = { hooks: {}, replicaDigest: null, replicaCheckTraffic: null } as unknown as Strategy;
    const check = new ReplicaCheck({
      bus: new EventBus(),
      metrics,
      room: () => ({ transport, elastic: null }) as unknown as JoinedRoom,
      rank: () => rank,
      strategy: () => strategy,
      params: async () => new Float32Array(paramsAfter(rank, step)),
      lag: () => LAG,
    });
    /** The run loop between steps: settle all but the newest lag - 1, then check this step alongside the next. */
    const afterStep = async (done: number) => {
      await check.settleBehind();
      step = done;
      await check.check(done, { alongsideNextStep: true, afterStep: true });
    };
    return { check, metrics, afterStep };
  });
}

const settledWithin = async (promise: Promise<unknown>, ms: number): Promise<boolean> => {
  let settled = false;
  void promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  await new Promise((resolve) => setTimeout(resolve, ms));
  return settled;
};

describe(`the replica check with a lag of ${LAG} steps`, () => {
  it(`a tab runs ${LAG} steps ahead of a replica that has not hashed yet, and waits at the next one until it has`, async () => {
    const [fast, slow] = tabs(() => [1, 2, 3]);
    // Steps 1 to 3: each exchange left on the wire, none waited for (the slow tab has checked nothing).
    for (const step of [1, 2, 3]) expect(await settledWithin(fast.afterStep(step), 200), `step ${step}`).toBe(true);
    // Step 4 must first settle step 1's exchange: it waits for the slow tab's hash of step 1.
    const fourth = fast.afterStep(4);
    expect(await settledWithin(fourth, 50)).toBe(false);
    await slow.afterStep(1);
    await fourth;
    for (const step of [2, 3, 4]) await slow.afterStep(step);
    await Promise.all([fast.check.settle(), slow.check.settle()]);
    // Every step checked on both tabs, none left out.
    expect(fast.metrics.hashChecks).toBe(4);
    expect(slow.metrics.hashChecks).toBe(4);
    expect(fast.metrics.hashesAgree).toBe(true);
  });

  it(`replicas that differ after step 2 are found at most ${LAG} steps late, naming step 2`, async () => {
    const [a, b] = tabs((rank, step) => (rank === 1 && step >= 2 ? [1, 2, 4] : [1, 2, 3]));
    let found: unknown = null;
    const run = async (tab: typeof a) => {
      for (let step = 1; step <= 8; step++) {
        try {
          await tab.afterStep(step);
        } catch (error) {
          return { error, step };
        }
      }
      return { error: null, step: 9 };
    };
    const [ra, rb] = await Promise.all([run(a), run(b)]);
    for (const r of [ra, rb]) {
      found = r.error;
      expect(found).toBeInstanceOf(ReplicasDisagree);
      expect((found as Error).message).toMatch(/after step 2: ranks 1 differ/);
      // Step 2's exchange is settled before step 2 + LAG's starts: found by then.
      expect(r.step).toBeLessThanOrEqual(2 + LAG);
      expect(r.step).toBeGreaterThan(2);
    }
  });

  it('a check that is not left on the wire settles the older ones first (the last step: every step checked)', async () => {
    const [a, b] = tabs(() => [5]);
    for (const step of [1, 2]) await Promise.all([a.afterStep(step), b.afterStep(step)]);
    await Promise.all([a.check.check(3), b.check.check(3)]);
    expect(a.metrics.hashChecks).toBe(3);
    expect(b.metrics.hashChecks).toBe(3);
  });
});
