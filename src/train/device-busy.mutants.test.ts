// Mutation-found gaps in DeviceBusy (src/train/device-busy.ts): the trainer tests reach it only through
// whole steps, where the device has always finished by the time anything reads it, so a settled() that
// does not wait, or a clear() that keeps the last step's spans, passed every one of them.
import { describe, expect, it } from 'vitest';
import { DeviceBusy } from './device-busy';

describe('DeviceBusy', () => {
  it('settled() waits for a submission still on the device (a settled() that returns at once would let a step read results early)', async () => {
    const busy = new DeviceBusy();
    let finish = () => {};
    busy.track(0, new Promise<void>((resolve) => (finish = resolve)));
    let settled = false;
    const waiting = busy.settled().then(() => (settled = true));
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(settled).toBe(false);
    finish();
    await waiting;
    expect(settled).toBe(true);
  });

  it('a span still running counts until the moment asked about; a failed submission also ends its span', async () => {
    const busy = new DeviceBusy();
    busy.track(5, new Promise<void>(() => {}));
    expect(busy.within(0, 20)).toEqual([[5, 20]]);
    const failed = new DeviceBusy();
    failed.track(performance.now(), Promise.reject(new Error('device lost')));
    await failed.settled();
    const [[start, end]] = failed.within(0, performance.now() + 1000);
    expect(end).toBeGreaterThanOrEqual(start);
    expect(end).toBeLessThan(performance.now() + 1000);
  });

  it("clear() forgets the spans and the pending submissions of the step before (else they count in the next step's busy time)", async () => {
    const busy = new DeviceBusy();
    busy.track(1, new Promise<void>(() => {}));
    busy.clear();
    expect(busy.within(0, 100)).toEqual([]);
    // The forgotten submission never finishes; settled() must not wait for it.
    await busy.settled();
  });
});
