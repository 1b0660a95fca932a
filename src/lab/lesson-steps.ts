// The step gate every classroom lesson shares (classroom-lesson.ts, pipeline-lesson.ts,
// tensor-class-lesson.ts): the teacher's Next releases lesson step k on every tab once step k-1 is
// complete, and resolves when step k is; each rank waits at its gate until its next step is released; an
// abort fails every waiter. What makes a step complete (every rank reported it, or the one rank that ran
// it) is the lesson's to say. Also what every lesson is around its own numbers (GatedLesson): its rank
// among the members, whether it teaches, its gate, and its book of reports, each rank's report of a step
// kept once; and sending its reports to the other tabs.
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

/** What a lesson is given besides its own numbers: who takes part, who teaches, and the links between them. */
export interface LessonMembership {
  lesson: number;
  /** Peer ids in rank order. */
  members: string[];
  teacher: string;
  channel: ClassroomChannel;
  /** The room's data-channel transport over the same members. */
  transport: Transport;
  stepTimeoutMs?: number;
}

/**
 * A lesson on one rank, stepped by the teacher: the lesson says how many steps it has, what completes
 * a step and what a step still lacks; this keeps the rank, the gate and the reports (step -> rank ->
 * report). Once aborted it keeps no more reports.
 */
export abstract class GatedLesson<Report> {
  readonly rank: number;
  readonly teaching: boolean;
  /** The last step (step 0 is every rank's state before the first). */
  abstract readonly steps: number;
  /** step -> rank -> what that rank reported. */
  protected readonly reports = new Map<number, Map<number, Report>>();
  protected readonly gate: LessonSteps;

  constructor(private readonly membership: LessonMembership) {
    const { lesson, members, teacher, channel, transport, stepTimeoutMs } = membership;
    this.rank = lessonRank(members, channel, transport);
    this.teaching = teacher === channel.selfId;
    // The gate reads `steps` and asks about a step only once the lesson is built (steps is the lesson's).
    const lastStep = () => this.steps;
    this.gate = new LessonSteps({
      lesson,
      get steps() {
        return lastStep();
      },
      teaching: this.teaching,
      members,
      channel,
      stepTimeoutMs,
      isComplete: (step) => this.isComplete(step),
      missing: (step) => this.missing(step),
    });
  }

  /** Whether step `step` has every report it needs. */
  protected abstract isComplete(step: number): boolean;

  /** Why step `step` is not complete yet (for the teacher's timeout message). */
  protected abstract missing(step: number): string;

  get lesson(): number {
    return this.membership.lesson;
  }

  /** Peer id of the tab that leads the lesson. */
  get teacher(): string {
    return this.membership.teacher;
  }

  /** Teacher only: lets the next step run everywhere; resolves once its reports are complete. */
  next(): Promise<void> {
    return this.gate.next();
  }

  /** The teacher's release arrived (or, in the teacher's tab, was made). */
  release(step: number): void {
    this.gate.release(step);
  }

  /** Stops this rank's lesson: a waiting step rejects and nothing more is shown. */
  abort(reason: string): void {
    this.gate.abort(reason);
  }

  /** The ranks that have not reported step `step` yet, for `missing` ("0, 2"). */
  protected unreported(step: number): string {
    return this.membership.members.map((_, r) => r).filter((r) => !this.reports.get(step)?.has(r)).join(', ');
  }

  /**
   * Keeps `rank`'s report of `step` (a rank reports each step once; a repeat changes nothing). Returns
   * the step's reports when this one is new, else null (a repeat, or the lesson was aborted).
   */
  protected keep(step: number, rank: number, report: Report): ReadonlyMap<number, Report> | null {
    if (this.gate.aborted) return null;
    let byRank = this.reports.get(step);
    if (!byRank) this.reports.set(step, (byRank = new Map()));
    if (byRank.has(rank)) return null;
    byRank.set(rank, report);
    return byRank;
  }

  /** Sends this rank's report of a step to every other member (sendToOthers). */
  protected tellOthers(message: ClassroomMessage & { step: number }): void {
    sendToOthers(this.membership.members, this.membership.channel, message);
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
