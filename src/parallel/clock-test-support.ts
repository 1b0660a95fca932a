// vitest's fake clock for tests of code that times messages over the in-memory mesh (its delays are
// setTimeout, its timings performance.now()): a measured time is then what the links' latency and rate
// make it, exactly, however loaded the machine. The clock fires a timer at a whole millisecond (it
// truncates a delay), so links whose times a test asserts exactly should serialise every size in whole
// milliseconds (WHOLE_MS_RATE). For the unit tests only.
import { afterEach, beforeEach, vi } from 'vitest';

/** 256 kB/s: 256 B take 1 ms on a link and 256 KiB 1024 ms, whole milliseconds on the fake clock. */
export const WHOLE_MS_RATE = 256_000;

/** Every test of the calling file runs on the fake clock (setTimeout, clearTimeout, performance); the real one is back after each. */
export function useFakeClock(): void {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });
}

/** Runs the fake clock, timer by timer (each one's promise callbacks settled before the next), until no timer is left; then `work`'s result. */
export async function onClock<T>(work: Promise<T>): Promise<T> {
  // A rejection while the clock runs is the test's failure: reported by the `return`, not as unhandled.
  work.catch(() => undefined);
  await vi.runAllTimersAsync();
  return work;
}
