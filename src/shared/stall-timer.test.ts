// StallTimer under fake timers: news restarts the wait, repeated news does not, stop() ends it.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { StallTimer } from './stall-timer';

describe('StallTimer', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('fires ms after it began when nothing new happens', () => {
    const stalled = vi.fn();
    new StallTimer(1000, stalled);
    vi.advanceTimersByTime(999);
    expect(stalled).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(stalled).toHaveBeenCalledTimes(1);
  });

  it('restarts on each new thing, so it fires ms after the last one', () => {
    const stalled = vi.fn();
    const timer = new StallTimer(1000, stalled);
    for (const id of ['a', 'b', 'c']) {
      vi.advanceTimersByTime(900);
      timer.progress([`joined:${id}`]);
    }
    vi.advanceTimersByTime(999); // 3699 ms since it began, far past 1000
    expect(stalled).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(stalled).toHaveBeenCalledTimes(1);
  });

  it('counts each thing once: a link that opens again and again does not keep the wait alive', () => {
    const stalled = vi.fn();
    const timer = new StallTimer(1000, stalled);
    timer.progress(['open:a']);
    vi.advanceTimersByTime(600);
    timer.progress(['open:a', 'joined:a']);
    vi.advanceTimersByTime(600);
    timer.progress(['open:a', 'joined:a']);
    vi.advanceTimersByTime(400);
    expect(stalled).toHaveBeenCalledTimes(1); // 1000 ms after joined:a, the last new thing
  });

  it('never fires once stopped, and ignores news after it fired', () => {
    const stopped = vi.fn();
    new StallTimer(1000, stopped).stop();
    vi.advanceTimersByTime(5000);
    expect(stopped).not.toHaveBeenCalled();

    const fired = vi.fn();
    const timer = new StallTimer(1000, fired);
    vi.advanceTimersByTime(1000);
    timer.progress(['joined:late']);
    vi.advanceTimersByTime(5000);
    expect(fired).toHaveBeenCalledTimes(1);
  });
});
