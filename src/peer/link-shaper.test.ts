// Link shaping: frames arrive one latency after they are serialised at the link's rate, the sender is
// held for the serialisation only, each link keeps its order, and links do not share a rate. Real
// timers: a loaded machine makes arrivals late, never early, so lower bounds are exact and upper
// bounds generous.
import { describe, expect, it } from 'vitest';
import { LinkShaper, linkShapeOf, UNSHAPED } from './link-shaper';

/** Polls until `done` (at most 10 s: a stalled machine delays timers, it never loses them). */
async function until(done: () => boolean): Promise<void> {
  for (let waited = 0; !done() && waited < 10_000; waited += 10) await new Promise((resolve) => setTimeout(resolve, 10));
}

describe('LinkShaper', () => {
  it('100 kB at 1 MB/s with 30 ms latency: the send returns after ~100 ms, the frame lands after >= 130 ms; the next frame queues behind it', async () => {
    const shaper = new LinkShaper({ latencyMs: 30, bytesPerSec: 1e6 });
    const t0 = performance.now();
    const arrivals: [string, number][] = [];
    await shaper.send('b', 100_000, () => void arrivals.push(['first', performance.now() - t0]));
    const sentAfter = performance.now() - t0;
    await shaper.send('b', 50_000, () => void arrivals.push(['second', performance.now() - t0]));
    await until(() => arrivals.length === 2);
    expect(sentAfter).toBeGreaterThanOrEqual(99);
    expect(sentAfter).toBeLessThan(1000);
    expect(arrivals.map(([name]) => name)).toEqual(['first', 'second']);
    expect(arrivals[0][1]).toBeGreaterThanOrEqual(129);
    expect(arrivals[1][1]).toBeGreaterThanOrEqual(179);
  });

  it("latency only: the sender is not held, 200 small frames arrive in order after the latency; another peer's link is its own", async () => {
    const shaper = new LinkShaper({ latencyMs: 20, bytesPerSec: Infinity });
    const order: number[] = [];
    const t0 = performance.now();
    for (let i = 0; i < 200; i++) await shaper.send('b', 1000, () => void order.push(i));
    // Nothing arrives before the latency: the loop ran with no wait (all 200 queued within 20 ms) or, on a
    // stalled machine, what arrived did so only after 20 ms.
    if (performance.now() - t0 < 20) expect(order).toEqual([]);
    let other = -1;
    await shaper.send('c', 1000, () => void (other = performance.now() - t0));
    await until(() => order.length === 200 && other >= 0);
    expect(order).toEqual([...Array(200).keys()]);
    expect(other).toBeGreaterThanOrEqual(19);
  });

  it("a link's own shape (the dashboard's override) replaces the tab's on that link only, until cleared", async () => {
    const shaper = new LinkShaper(UNSHAPED);
    shaper.setLink('slow', { latencyMs: 40, bytesPerSec: 1e6 });
    expect(shaper.shapeOf('slow')).toEqual({ latencyMs: 40, bytesPerSec: 1e6 });
    expect(shaper.shapeOf('fast')).toEqual(UNSHAPED);
    const t0 = performance.now();
    const arrivals: Record<string, number> = {};
    await shaper.send('fast', 50_000, () => void (arrivals.fast = performance.now() - t0));
    const fastSent = performance.now() - t0;
    await shaper.send('slow', 50_000, () => void (arrivals.slow = performance.now() - t0));
    await until(() => arrivals.fast !== undefined && arrivals.slow !== undefined);
    // 50 kB at 1 MB/s is 50 ms of serialisation, then 40 ms of latency; the unshaped link is not held at all.
    expect(fastSent).toBeLessThan(49);
    expect(arrivals.slow).toBeGreaterThanOrEqual(89);
    expect(() => shaper.setLink('slow', { latencyMs: -1, bytesPerSec: 1e6 })).toThrow(/latency/);
    shaper.setLink('slow', null);
    expect(shaper.shapeOf('slow')).toEqual(UNSHAPED);
    expect(shaper.overridden()).toEqual([]);
  });

  it('a frame whose channel closed meanwhile is dropped without an unhandled error', async () => {
    const shaper = new LinkShaper({ latencyMs: 5, bytesPerSec: Infinity });
    await shaper.send('b', 10, () => {
      throw new Error('no open channel to b');
    });
    await shaper.send('b', 10, () => Promise.reject(new Error('closed')));
    await new Promise((resolve) => setTimeout(resolve, 30));
  });

  it('the URL keys: both 0 is no shaping; bandwidth 0 is unlimited; a bad shape is refused', () => {
    expect(linkShapeOf(0, 0)).toBeNull();
    expect(linkShapeOf(20, 0)).toEqual({ latencyMs: 20, bytesPerSec: Infinity });
    expect(linkShapeOf(0, 5)).toEqual({ latencyMs: 0, bytesPerSec: 5e6 });
    expect(() => new LinkShaper({ latencyMs: -1, bytesPerSec: 1 })).toThrow(/latency/);
    expect(() => new LinkShaper({ latencyMs: 0, bytesPerSec: 0 })).toThrow(/bandwidth/);
  });
});
