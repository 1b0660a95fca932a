import { describe, expect, it } from 'vitest';
import { everyMs } from './wake-timer';

describe('everyMs', () => {
  it('ticks repeatedly until stopped (Node: the setInterval fallback)', async () => {
    let ticks = 0;
    const stop = everyMs(10, () => ticks++);
    await new Promise((r) => setTimeout(r, 75));
    stop();
    const atStop = ticks;
    expect(atStop).toBeGreaterThanOrEqual(3);
    await new Promise((r) => setTimeout(r, 40));
    expect(ticks).toBe(atStop);
  });
});
