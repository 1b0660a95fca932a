// One classroom lesson on one rank: a ring all-reduce of a small vector over the room's real transport,
// run by the very executor and schedule that training uses (runAllReduce), with its `gate` holding
// every step until the teacher's tab releases it. After each step the rank tells every other rank what
// it now holds; a tab shows a step once all ranks have reported it, so every number on screen is one
// that its rank really held.
import { runAllReduce } from '../collective/collectives';
import type { StepInfo } from '../collective/executor';
import type { RecvAction } from '../collective/schedules';
import { ringAllReduce } from '../collective/schedules';
import type { ChunkEvent, MessageTag, Phase, Transport } from '../collective/types';
import { CLASSROOM_COLLECTIVE, type StateMessage } from './classroom-protocol';
import type { ClassroomRankState, ClassroomSnapshotEvent } from '../shared/events';
import { GatedLesson, LessonAborted, type LessonMembership } from './lesson-steps';

export { LessonAborted };

/** Numbers per chunk: enough to see a chunk is a slice of the vector, few enough to read aloud. */
export const VALUES_PER_CHUNK = 2;

/** The membership's transport moves the lesson's chunks. */
export interface LessonSetup extends LessonMembership {
  publishSnapshot(event: ClassroomSnapshotEvent): void;
  publishChunk?(event: ChunkEvent): void;
}

/**
 * The vector rank `rank` starts with: a digit 1..9 per element (varied by lesson), scaled by 10^rank
 * while that stays readable, so that a partial sum such as 1053 shows at a glance which ranks it holds.
 */
export function lessonVector(lesson: number, rank: number, world: number): Float32Array {
  const values = new Float32Array(VALUES_PER_CHUNK * world);
  const scale = world <= 4 ? 10 ** rank : 1;
  for (let i = 0; i < values.length; i++) {
    const digit = ((lesson * 7 + rank * 5 + i * 3) % 9) + 1;
    values[i] = digit * scale;
  }
  return values;
}

/** Remembers what each receive delivered, so a snapshot can show the chunk exactly as it arrived. */
class RecordingTransport implements Transport {
  readonly received = new Map<string, Float32Array>();
  constructor(private readonly inner: Transport) {}
  get rank(): number {
    return this.inner.rank;
  }
  get world(): number {
    return this.inner.world;
  }
  send(to: number, tag: MessageTag, payload: Uint8Array): Promise<void> {
    return this.inner.send(to, tag, payload);
  }
  async recv(from: number, tag: MessageTag): Promise<Uint8Array> {
    const payload = await this.inner.recv(from, tag);
    // Copy the bytes out: the payload may be a view into a larger frame (and simple-peer hands out
    // Node-style Buffers, whose slice() is a view, not a copy).
    const values = new Float32Array(payload.byteLength / 4);
    new Uint8Array(values.buffer).set(payload);
    this.received.set(`${from}:${tag.chunk}`, values);
    return payload;
  }
}

export class ClassroomLesson extends GatedLesson<ClassroomRankState> {
  readonly world: number;
  /** Schedule steps; snapshots are numbered 0 (before anything moved) to `steps`. */
  readonly steps: number;
  readonly runId: string;
  private readonly chunks: { start: number; end: number }[];
  private readonly phases: Phase[];
  private readonly length: number;

  constructor(private readonly setup: LessonSetup) {
    super(setup);
    this.world = setup.members.length;
    this.length = VALUES_PER_CHUNK * this.world;
    const schedule = ringAllReduce(this.world, this.rank, this.length);
    this.steps = schedule.steps.length;
    this.phases = schedule.steps.map((s) => s.phase);
    this.chunks = schedule.chunks.map((c) => ({ start: c.offset, end: c.offset + c.length }));
    this.runId = `${setup.lesson}:${CLASSROOM_COLLECTIVE}`;
  }

  protected isComplete(step: number): boolean {
    return (this.reports.get(step)?.size ?? 0) >= this.world;
  }

  protected missing(step: number): string {
    return `rank ${this.unreported(step)} did not report`;
  }

  /** Runs this rank's part of the lesson to the end (or until aborted, which rejects). */
  async run(): Promise<void> {
    const data = lessonVector(this.setup.lesson, this.rank, this.world);
    const transport = new RecordingTransport(this.setup.transport);
    let previous: readonly RecvAction[] = [];
    const gate = async (info: StepInfo): Promise<void> => {
      // Called before step `info.step`: the vector now holds the state after `info.step` steps.
      this.report(info.step, data, previous, transport);
      previous = info.recvs;
      await this.gate.releasedUpTo(info.step + 1);
    };
    await runAllReduce(transport, data, {
      round: this.setup.lesson,
      collective: CLASSROOM_COLLECTIVE,
      gate,
      onEvent: this.setup.publishChunk,
    });
    this.report(this.steps, data, previous, transport);
  }

  /** Another rank's report. Returns a reason when it cannot be used. */
  receiveState(from: string, message: StateMessage): string | null {
    if (this.setup.members[message.rank] !== from) return `classroom: peer ${from} reported as rank ${message.rank}`;
    if (message.step > this.steps) return `classroom: step ${message.step} is past the lesson's ${this.steps}`;
    if (message.values.length !== this.length) return `classroom: ${message.values.length} values, the lesson has ${this.length}`;
    const state: ClassroomRankState = { rank: message.rank, values: message.values.slice() };
    if (message.received) state.received = { ...message.received, values: message.received.values.slice() };
    this.record(message.step, state);
    return null;
  }

  // --- internals -----------------------------------------------------------------------------------

  /** This rank's own state after `step` steps: recorded here and sent to every other member. */
  private report(step: number, data: Float32Array, recvs: readonly RecvAction[], transport: RecordingTransport): void {
    const state: ClassroomRankState = { rank: this.rank, values: Array.from(data) };
    const first = recvs[0];
    if (first) {
      const arrived = transport.received.get(`${first.from}:${first.msg}`);
      if (arrived) state.received = { chunk: first.chunk, from: first.from, values: Array.from(arrived) };
    }
    const message: StateMessage = { kind: 'state', lesson: this.setup.lesson, step, ...state };
    this.tellOthers(message);
    this.record(step, state);
  }

  private record(step: number, state: ClassroomRankState): void {
    const byRank = this.keep(step, state.rank, state);
    if (!byRank || byRank.size < this.world) return;
    const perRank = [...byRank.values()].sort((a, b) => a.rank - b.rank);
    this.setup.publishSnapshot({
      type: 'classroom',
      runId: this.runId,
      chunks: this.chunks,
      teaching: this.teaching,
      steps: this.steps,
      snapshot: { step, phase: step === 0 ? 'initial' : this.phases[step - 1], perRank },
    });
    this.gate.reported(step);
  }
}
