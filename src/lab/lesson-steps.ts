// The step gate every classroom lesson shares (classroom-lesson.ts, pipeline-lesson.ts): the teacher's
// Next releases lesson step k on every tab once step k-1 is complete, and resolves when step k is;
// each rank waits at its gate until its next step is released; an abort fails every waiter. What makes
// a step complete (every rank reported it, or the one rank that ran it) is the lesson's to say. Also the
// two chores every lesson shares: finding its rank, and sending its reports to the other tabs.
import type { Transport } from '../collective/types';
import type { ClassroomChannel, ClassroomMessage } from './classroom-protocol';

/** How long the teacher waits for a step's reports before calling it stuck. */
const DEFAULT_STEP_TIMEOUT_MS = 30_000;

export class LessonAborted extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LessonAborted';
  }
}

export interface LessonStepsSetup {
  lesson: number;
  /** The last step. */
  steps: number;
  teaching: boolean;
  members: string[];
  channel: ClassroomChannel;
  isComplete(step: number): boolean;
  /** Why step `step` is not complete yet (for the timeout's message). */
  missing(step: number): string;
  stepTimeoutMs?: number;
}

export class LessonSteps {
  private released = 0;
  private releaseWaiters: { step: number; wake: () => void; fail: (e: Error) => void }[] = [];
  private readonly completeWaiters = new Map<number, (() => void)[]>();
  private abortedWith: Error | null = null;
  private inFlight: Promise<void> | null = null;

  constructor(private readonly setup: LessonStepsSetup) {}

  get aborted(): Error | null {
    return this.abortedWith;
  }

  /** Teacher only: releases one more step everywhere; resolves once it is complete. */
  next(): Promise<void> {
    if (!this.setup.teaching) return Promise.reject(new Error("only the teacher's tab (the one that loaded the lesson) steps it"));
    if (this.abortedWith) return Promise.reject(this.abortedWith);
    if (this.inFlight) return this.inFlight;
    if (this.released >= this.setup.steps) return Promise.resolve();
    const step = this.released + 1;
    this.inFlight = (async () => {
      // The step before must be complete: that also means every rank has its transport up.
      await this.whenComplete(step - 1);
      const { members, channel, lesson } = this.setup;
      for (const member of members) {
        if (member !== channel.selfId) channel.send(member, { kind: 'release', lesson, step });
      }
      this.release(step);
      await this.whenComplete(step);
    })().finally(() => {
      this.inFlight = null;
    });
    return this.inFlight;
  }

  /** The teacher's release arrived (or, in the teacher's tab, was made). */
  release(step: number): void {
    if (step <= this.released) return;
    this.released = Math.min(step, this.setup.steps);
    const ready = this.releaseWaiters.filter((w) => w.step <= this.released);
    this.releaseWaiters = this.releaseWaiters.filter((w) => w.step > this.released);
    for (const w of ready) w.wake();
  }

  /** Resolves once step `step` is released (rejects when the lesson is aborted). */
  releasedUpTo(step: number): Promise<void> {
    if (this.abortedWith) return Promise.reject(this.abortedWith);
    if (step <= this.released) return Promise.resolve();
    return new Promise((wake, fail) => this.releaseWaiters.push({ step, wake, fail }));
  }

  /** The lesson's report for `step` arrived: wakes whoever waits for it, once it is complete. */
  reported(step: number): void {
    if (!this.setup.isComplete(step)) return;
    for (const wake of this.completeWaiters.get(step) ?? []) wake();
    this.completeWaiters.delete(step);
  }

  abort(reason: string): void {
    if (this.abortedWith) return;
    this.abortedWith = new LessonAborted(reason);
    for (const w of this.releaseWaiters.splice(0)) w.fail(this.abortedWith);
    for (const waiters of this.completeWaiters.values()) for (const wake of waiters) wake();
    this.completeWaiters.clear();
  }

  private whenComplete(step: number): Promise<void> {
    if (this.setup.isComplete(step)) return Promise.resolve();
    const timeoutMs = this.setup.stepTimeoutMs ?? DEFAULT_STEP_TIMEOUT_MS;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`classroom step ${step}: ${this.setup.missing(step)} within ${timeoutMs} ms`)), timeoutMs);
      const waiters = this.completeWaiters.get(step) ?? [];
      waiters.push(() => {
        clearTimeout(timer);
        if (this.abortedWith) reject(this.abortedWith);
        else resolve();
      });
      this.completeWaiters.set(step, waiters);
    });
  }
}

/** This tab's rank among `members`; throws when it is not a member or the transport disagrees. */
export function lessonRank(members: readonly string[], channel: ClassroomChannel, transport: Transport): number {
  const rank = members.indexOf(channel.selfId);
  if (rank < 0) throw new Error('this tab is not a member of the lesson');
  if (transport.rank !== rank || transport.world !== members.length) {
    throw new Error(`the transport is rank ${transport.rank}/${transport.world}, the lesson has this tab at ${rank}/${members.length}`);
  }
  return rank;
}

/**
 * Sends a report of lesson step `step` to every member but this tab. A link that fails is refused with
 * the reason, not thrown: that rank cannot see this one's numbers, and its own lesson fails at the next
 * transfer or times out at the gate.
 */
export function sendToOthers(members: readonly string[], channel: ClassroomChannel, message: ClassroomMessage & { step: number }): void {
  for (const member of members) {
    if (member === channel.selfId) continue;
    try {
      channel.send(member, message);
    } catch (error) {
      channel.refuse(member, `classroom: could not send step ${message.step}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
}
