// RunLifecycle (run-state.ts) through a small run loop built on it the way session.ts and
// partitioned-session.ts are: the states it publishes, its pause gate, and its one failure.
import { describe, expect, it } from 'vitest';
import { EventBus, type LabEvent } from '../shared/events';
import { RunLifecycle } from './run-state';

/** A loop of `steps` steps, each waiting on `stepGate` (the test's handle on when a step ends). */
class CountingLoop extends RunLifecycle {
  done = 0;
  failures: unknown[] = [];
  stepGate: () => Promise<void> = () => Promise.resolve();

  constructor(
    bus: EventBus,
    private readonly steps: number,
  ) {
    super(bus);
  }

  start(): Promise<void> {
    return this.runOnce(async () => {
      this.setState('loading');
      this.setState('training');
      while (this.done < this.steps) {
        if (this.paused) await this.untilResumed();
        if (this.state === 'error') return;
        await this.stepGate();
        this.done++;
      }
    });
  }

  failFromOutside(error: unknown): void {
    this.fail(error);
  }

  runError(): string | null {
    return this.statusAt({ rank: 0, world: 1, step: this.done, steps: this.steps, room: '', backend: null, epoch: 0 }).error;
  }

  protected override failed(error: unknown): void {
    this.failures.push(error);
  }
}

function recorded(bus: EventBus): LabEvent[] {
  const events: LabEvent[] = [];
  bus.subscribe((event) => events.push(event));
  return events;
}

const statesOf = (events: LabEvent[]) => events.flatMap((e) => (e.type === 'state' ? [e.state] : []));
const ticks = async (n: number) => {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setTimeout(resolve, 0));
};

/** A loop of 4 steps, started, that the user paused during its second step; it now waits at the pause gate. */
async function pausedAfterTwoSteps() {
  const bus = new EventBus();
  const events = recorded(bus);
  const loop = new CountingLoop(bus, 4);
  loop.stepGate = async () => {
    if (loop.done === 1) loop.pause();
  };
  const finished = loop.start();
  await ticks(5);
  expect(loop.done).toBe(2);
  return { events, loop, finished };
}

describe('RunLifecycle', () => {
  it('runs its course once, publishing each state, and refuses a second start', async () => {
    const bus = new EventBus();
    const events = recorded(bus);
    const loop = new CountingLoop(bus, 3);
    await loop.start();
    expect(loop.done).toBe(3);
    expect(statesOf(events)).toEqual(['loading', 'training', 'done']);
    await expect(loop.start()).rejects.toThrow(/already started \(state done\)/);
  });

  it('pauses only while training and resumes only after a pause', () => {
    const bus = new EventBus();
    const events = recorded(bus);
    const loop = new CountingLoop(bus, 1);
    loop.pause();
    loop.resume();
    expect(events).toEqual([]);
  });

  it('holds the loop at the pause gate until it is resumed', async () => {
    const { events, loop, finished } = await pausedAfterTwoSteps();
    loop.resume();
    await finished;
    expect(loop.done).toBe(4);
    expect(statesOf(events)).toEqual(['loading', 'training', 'paused', 'training', 'done']);
  });

  it('ends at the first failure: logged, published with its message, the pause gate opened, never followed by done; later failures are ignored', async () => {
    const { events, loop, finished } = await pausedAfterTwoSteps();
    loop.failFromOutside(new Error('device lost'));
    loop.failFromOutside(new Error('a second failure'));
    await finished;
    expect(loop.done).toBe(2);
    expect(loop.runError()).toBe('device lost');
    expect(loop.failures.map((e) => (e as Error).message)).toEqual(['device lost']);
    expect(events.filter((e) => e.type === 'log').map((e) => e.type === 'log' && [e.level, e.message])).toEqual([['error', 'device lost']]);
    expect(events.at(-1)).toEqual({ type: 'state', state: 'error', error: 'device lost' });
  });

  it('turns a failure thrown by its course into state error instead of throwing it', async () => {
    const bus = new EventBus();
    const events = recorded(bus);
    const loop = new CountingLoop(bus, 2);
    loop.stepGate = () => Promise.reject(new Error('lost a peer'));
    await expect(loop.start()).resolves.toBeUndefined();
    expect(loop.runError()).toBe('lost a peer');
    expect(statesOf(events)).toEqual(['loading', 'training', 'error']);
  });
});
