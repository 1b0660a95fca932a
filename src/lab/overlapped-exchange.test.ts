import { describe, expect, it } from 'vitest';
import { OverlappedExchange, ReplicasDisagree } from './overlapped-exchange';

/** A promise the test settles. */
function deferred() {
  let resolve!: () => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 5));

describe('OverlappedExchange', () => {
  it('runs the exchange at once and settles when it is done; nothing in flight settles at once', async () => {
    const exchange = new OverlappedExchange();
    await exchange.settle();
    const d = deferred();
    let started = false;
    exchange.start(() => {
      started = true;
      return d.promise;
    });
    expect(started).toBe(true);
    expect(exchange.inFlight).toBe(true);
    let settled = false;
    const settling = exchange.settle().then(() => (settled = true));
    await tick();
    expect(settled).toBe(false);
    d.resolve();
    await settling;
    expect(exchange.inFlight).toBe(false);
  });

  it('holds a failure until settled (no unhandled rejection), and throws it then', async () => {
    const exchange = new OverlappedExchange();
    exchange.start(() => Promise.reject(new Error('link lost')));
    await tick(); // an unhandled rejection would fail the test run here
    await expect(exchange.settle()).rejects.toThrow('link lost');
    await exchange.settle(); // settled once: nothing left
  });

  it('forgives what the caller forgives, but never a disagreement', async () => {
    const exchange = new OverlappedExchange();
    exchange.start(() => Promise.reject(new Error('link lost')));
    await exchange.settle(() => true);
    exchange.start(() => Promise.reject(new ReplicasDisagree('replicas disagree after step 3: ranks 2 differ from rank 0')));
    await expect(exchange.settle(() => true)).rejects.toThrow(ReplicasDisagree);
  });

  it('refuses a second exchange while the first is not settled', async () => {
    const exchange = new OverlappedExchange();
    exchange.start(() => Promise.resolve());
    expect(() => exchange.start(() => Promise.resolve())).toThrow(/not been settled/);
    await exchange.settle();
    exchange.start(() => Promise.resolve());
    await exchange.settle();
  });

  it('holds up to `depth` exchanges; settle(keep) waits for the oldest until `keep` are left, and throws the first failure', async () => {
    const exchange = new OverlappedExchange();
    const d = [deferred(), deferred(), deferred()];
    for (const x of d) exchange.start(() => x.promise, 3);
    expect(() => exchange.start(() => Promise.resolve(), 3)).toThrow(/3 in flight, at most 3/);
    // keep 2: only the oldest is waited for; the newer two stay in flight.
    let settled = false;
    const settling = exchange.settle(undefined, 2).then(() => (settled = true));
    d[2].resolve();
    await tick();
    expect(settled).toBe(false);
    d[0].resolve();
    await settling;
    expect(exchange.inFlightCount).toBe(2);
    // The oldest left fails with a disagreement: settling all throws it, though a newer one agreed.
    d[1].reject(new ReplicasDisagree('replicas disagree after step 2: ranks 1 differ from rank 0'));
    await expect(exchange.settle(() => true)).rejects.toThrow(/after step 2/);
    expect(() => exchange.start(() => Promise.resolve(), 0)).toThrow(/positive integer/);
  });

  it('reports its time on the wire within a step, a running one until the step ends', async () => {
    const exchange = new OverlappedExchange();
    expect(exchange.busyWithin(0, 1e9)).toEqual([]);
    const d = deferred();
    const hashed = deferred();
    exchange.start(async (onWire) => {
      await hashed.promise;
      onWire();
      await d.promise;
    });
    await tick();
    // Waiting for the parameters and hashing them is not time on the wire.
    expect(exchange.busyWithin(0, 1e9)).toEqual([]);
    const before = performance.now();
    hashed.resolve();
    await tick();
    const [[start, running]] = exchange.busyWithin(0, before + 1e6);
    expect(start).toBeGreaterThanOrEqual(before);
    expect(running).toBe(before + 1e6);
    await tick();
    d.resolve();
    await exchange.settle();
    const [[, end]] = exchange.busyWithin(0, before + 1e6);
    expect(end).toBeGreaterThan(start + 4);
    // A step that starts after the exchange ended saw none of it; one that starts mid-way sees the rest.
    expect(exchange.busyWithin(end + 1, end + 50)).toEqual([]);
    expect(exchange.busyWithin(start + 2, end + 50)).toEqual([[start + 2, end]]);
  });
});
