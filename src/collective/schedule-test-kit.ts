// Test-only checks shared by the tests of every schedule (ring and star in schedules.ts, tree, recursive
// halving-doubling, all-to-all): every send matched by exactly one receive, the executor's events
// equal to the schedule, and one run of a schedule per rank over the in-memory mesh. The checks of a
// schedule alone return the problems found (empty: sound) so a test can assert `[]` and see every
// problem at once; the checks of a run over the mesh assert with vitest's `expect`, rank by rank.
import { expect } from 'vitest';
import { type RunOptions, runSchedule } from './executor';
import { type MemoryMeshOptions, createMemoryMesh } from './memory-transport';
import { type Schedule, checkSchedule } from './schedules';
import { exactSum, firstBitDifference, integerInput, simulate } from './test-support';
import type { ChunkEvent } from './types';

/** What counts as a match beyond "same sender, receiver, message number and element count". */
export interface MatchRules {
  /** The receive may come in a later step than its send (the executor's barriers allow it). Default false. */
  laterReceive?: boolean;
  /** The receive lands at the offset it was sent from (schedules that move a range to the same place). Default false. */
  sameOffset?: boolean;
}

/**
 * Every send has exactly one receive on its peer, for the same element count, in the same step (unless
 * `rules.laterReceive`: then the same or a later step) and, with `rules.sameOffset`, at the same offset.
 */
export function unmatchedMessages(schedules: readonly Schedule[], rules: MatchRules = {}): string[] {
  const pending = new Map<string, { offset: number; length: number; step: number }>();
  const problems: string[] = [];
  for (const s of schedules) {
    for (const step of s.steps) {
      for (const a of step.sends) {
        const key = `${s.rank}>${a.to}#${a.msg}`;
        if (pending.has(key)) problems.push(`${key}: sent twice`);
        pending.set(key, { offset: a.offset, length: a.length, step: step.step });
      }
    }
  }
  for (const s of schedules) {
    for (const step of s.steps) {
      for (const a of step.recvs) {
        const key = `${a.from}>${s.rank}#${a.msg}`;
        const sent = pending.get(key);
        if (!sent) problems.push(`${key}: received but never sent`);
        else if (sent.length !== a.length) problems.push(`${key}: sent ${sent.length} elements, received ${a.length}`);
        else if (rules.sameOffset && sent.offset !== a.offset) problems.push(`${key}: sent from offset ${sent.offset}, received at ${a.offset}`);
        else if (rules.laterReceive ? sent.step > step.step : sent.step !== step.step) problems.push(`${key}: sent at step ${sent.step}, received at ${step.step}`);
        pending.delete(key);
      }
    }
  }
  for (const key of pending.keys()) problems.push(`${key}: sent but never received`);
  return problems;
}

/** The schedule's actions and the executor's events of one rank, as sorted comparable lines. */
export function eventsVersusSchedule(schedule: Schedule, events: readonly ChunkEvent[], elementBytes = 4): { expected: string[]; got: string[] } {
  const line = (direction: string, step: number, a: { chunk: number; part: number; offset: number; length: number; phase: string }, peer: number, bytes: number) =>
    `${direction} s${step} ${a.phase} c${a.chunk} p${a.part} @${a.offset}+${a.length} peer${peer} ${bytes}B`;
  const expected = schedule.steps.flatMap((s) => [
    ...s.sends.map((a) => line('send', s.step, a, a.to, a.length * elementBytes)),
    ...s.recvs.map((a) => line('recv', s.step, a, a.from, a.length * elementBytes)),
  ]);
  const got = events
    .filter((e) => e.rank === schedule.rank && e.collective === schedule.collective)
    .map((e) => line(e.direction, e.step, e, e.peer, e.bytes));
  return { expected: expected.sort(), got: got.sort() };
}

/** Non-integer floats from a seed (a linear congruential generator): sums of these round, so order shows. */
export function seededFloats(seed: number, length: number): Float32Array {
  let state = (seed * 2654435761 + 1) % 2147483648;
  const x = new Float32Array(length);
  for (let i = 0; i < length; i++) {
    state = (state * 1103515245 + 12345) % 2147483648;
    x[i] = (state / 2147483648 - 0.5) * 3.7 * (1 + (i % 7));
  }
  return x;
}

/** What one run over the in-memory mesh left behind. */
export interface MeshRun {
  /** Each rank's vector after its schedule ran on it in place. */
  data: Float32Array[];
  /** Every rank's events, in the order the executor emitted them. */
  events: ChunkEvent[];
  /** Messages each rank's transport received but nobody took (0 when every send was consumed). */
  pendingMessages: number[];
}

/**
 * Runs `scheduleOf(rank)` on every rank of a fresh in-memory mesh, each over its own `dataOf(rank)`, all
 * concurrently as real ranks would; `run` sets the message tag (default round 0, collective 0) and averaging.
 */
export async function runOnMemoryMesh(
  world: number,
  scheduleOf: (rank: number) => Schedule,
  dataOf: (rank: number) => Float32Array,
  run: Partial<Omit<RunOptions, 'onEvent'>> = {},
  mesh: MemoryMeshOptions = {},
): Promise<MeshRun> {
  const transports = createMemoryMesh(world, mesh);
  const data = transports.map((t) => dataOf(t.rank));
  const events: ChunkEvent[] = [];
  const options: RunOptions = { round: 0, collective: 0, ...run, onEvent: (e) => events.push(e) };
  await Promise.all(transports.map((t, r) => runSchedule(t, scheduleOf(r), data[r], options)));
  return { data, events, pendingMessages: transports.map((t) => t.pendingMessages) };
}

/**
 * The all-reduce `scheduleOf` builds, run on integer inputs over the in-memory mesh: every rank must end
 * with the exact sum, bit for bit, and no transport may hold a message nobody took.
 */
export async function expectExactSumOnMesh(world: number, length: number, scheduleOf: (rank: number) => Schedule): Promise<void> {
  const { data, pendingMessages } = await runOnMemoryMesh(world, scheduleOf, (r) => integerInput(r, length));
  const want = exactSum(world, length);
  for (const x of data) expect(firstBitDifference(x, want)).toBe(-1);
  for (const pending of pendingMessages) expect(pending).toBe(0);
}

/** The executor's events of one run over the mesh (round 2, collective 1) must equal each rank's schedule. */
export async function expectEventsEqualSchedules(world: number, length: number, scheduleOf: (rank: number) => Schedule): Promise<void> {
  const schedules = Array.from({ length: world }, (_, r) => scheduleOf(r));
  const { events } = await runOnMemoryMesh(world, (r) => schedules[r], (r) => integerInput(r, length), { round: 2, collective: 1 });
  for (const s of schedules) {
    const { expected, got } = eventsVersusSchedule(s, events);
    expect(got).toEqual(expected);
  }
}

/**
 * One all-reduce's schedules of every rank, checked without running them: each is well formed, every
 * send is received in its step, every rank has the same step count, and simulating them on integer
 * inputs gives every rank the exact sum, bit for bit.
 */
export function expectSoundExactAllReduce(schedules: readonly Schedule[], length: number): void {
  for (const s of schedules) expect(checkSchedule(s)).toEqual([]);
  expect(unmatchedMessages(schedules)).toEqual([]);
  expect(new Set(schedules.map((s) => s.steps.length)).size).toBe(1);
  const out = simulate([...schedules], schedules.map((_, r) => integerInput(r, length)));
  const want = exactSum(schedules.length, length);
  for (const x of out) expect(firstBitDifference(x, want)).toBe(-1);
}
