// A run loop's state, the part both run loops share (session.ts for whole-model runs,
// partitioned-session.ts for partitioned ones; each extends it): the run's state, published on the
// event bus at every change; the pause gate the loop waits at between steps; the run's one failure;
// its log lines. It guarantees: the run starts once; a pause takes hold only while training, a resume
// only after a pause; the first failure is the run's error (logged, published as state 'error', and it
// wakes a loop waiting at the pause gate), later ones are ignored.
import type { BackendInfo } from '../engine/backend';
import type { EventBus, RunState } from '../shared/events';
import type { LabStatus } from './api';

export type LogLevel = 'info' | 'warn' | 'error';

export class RunLifecycle {
  private current: RunState = 'idle';
  private failure: string | null = null;
  private pausedByUser = false;
  private resumeWaiters: (() => void)[] = [];

  constructor(private readonly events: EventBus) {}

  pause(): void {
    if (this.current === 'training') {
      this.pausedByUser = true;
      this.setState('paused');
    }
  }

  resume(): void {
    if (!this.pausedByUser) return;
    this.pausedByUser = false;
    this.setState('training');
    for (const wake of this.resumeWaiters.splice(0)) wake();
  }

  protected get state(): RunState {
    return this.current;
  }

  /** Whether the user paused the run (a run that re-forms meanwhile stays paused through it). */
  protected get paused(): boolean {
    return this.pausedByUser;
  }

  /** The run's status (LabStatus) at `where` in the room and the run, with the run's state and error. */
  protected statusAt(where: { rank: number; world: number; step: number; steps: number; room: string; backend: BackendInfo | null; epoch: number }): LabStatus {
    const { rank, world, step, steps, room, backend, epoch } = where;
    return { rank, world, step, steps, state: this.current, error: this.failure, room, backend, epoch };
  }

  /**
   * Runs the loop's whole course once: state 'done' after it; a failure ends in state 'error' and is not
   * thrown. A course that returns early because the run failed meanwhile (a lost device) stays 'error'.
   */
  protected async runOnce(course: () => Promise<void>): Promise<void> {
    if (this.current !== 'idle') throw new Error(`the session has already started (state ${this.current})`);
    try {
      await course();
      if (this.state !== 'error') this.setState('done');
    } catch (error) {
      this.fail(error);
    }
  }

  /** The pause gate: resolves at once unless the run is paused, else once it is resumed or has failed. */
  protected untilResumed(): Promise<void> {
    if (!this.pausedByUser || this.current === 'error') return Promise.resolve();
    return new Promise<void>((wake) => this.resumeWaiters.push(wake));
  }

  protected setState(state: RunState, error?: string): void {
    this.current = state;
    this.events.publish({ type: 'state', state, ...(error ? { error } : {}) });
  }

  protected fail(error: unknown): void {
    if (this.current === 'error') return;
    this.failure = error instanceof Error ? error.message : String(error);
    this.log('error', this.failure);
    this.setState('error', this.failure);
    for (const wake of this.resumeWaiters.splice(0)) wake();
    this.failed(error);
  }

  /** What a loop undoes on its failure besides waking its pause gate (e.g. reject callers still waiting). */
  protected failed(_error: unknown): void {}

  protected log(level: LogLevel, message: string): void {
    this.events.publish({ type: 'log', level, message, t: performance.now() });
  }
}
