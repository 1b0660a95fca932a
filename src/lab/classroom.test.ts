import { describe, expect, it } from 'vitest';
import { lessonVector } from './classroom-lesson';
import { room, sleep, until } from './classroom-test-support';

/**
 * The ring written out independently of src/collective: at step s rank r receives chunk (r - s - 2)
 * mod N from rank r - 1 and adds it (reduce-scatter, s < N - 1) or copies it (all-gather). Returns the
 * state of every rank after each step, and what each received.
 */
function ringByHand(initial: number[][], perChunk: number) {
  const n = initial.length;
  const states = [initial.map((v) => v.slice())];
  const received: { chunk: number; from: number; values: number[] }[][] = [[]];
  for (let s = 0; s < 2 * (n - 1); s++) {
    const before = states[states.length - 1];
    const after = before.map((v) => v.slice());
    const got: { chunk: number; from: number; values: number[] }[] = [];
    for (let r = 0; r < n; r++) {
      const from = (r - 1 + n) % n;
      const chunk = (((r - s - 2) % n) + n) % n;
      const values = before[from].slice(chunk * perChunk, (chunk + 1) * perChunk);
      values.forEach((x, i) => (after[r][chunk * perChunk + i] = s < n - 1 ? after[r][chunk * perChunk + i] + x : x));
      got.push({ chunk, from, values });
    }
    states.push(after);
    received.push(got);
  }
  return { states, received };
}

describe('classroom over a mesh', () => {
  it("shows every rank's real numbers after each released step, on every tab, and only the teacher releases", async () => {
    // The teacher's messages to rank 2 are slow: rank 1's reports reach rank 2 before the start does.
    const r = room(3, (from, to) => (from === 0 && to === 2 ? 30 : 1));
    await r.classrooms[0].load(r.venues[0]);
    await until(() => [0, 1, 2].every((k) => r.snapshots(k).length === 1), 'the initial snapshot on every tab');

    const lesson = r.classrooms[2].current()!;
    const initial = [0, 1, 2].map((k) => Array.from(lessonVector(lesson.lesson, k, 3)));
    const { states, received } = ringByHand(initial, 2);
    expect(r.snapshots(2)[0].snapshot).toEqual({ step: 0, phase: 'initial', perRank: initial.map((values, rank) => ({ rank, values })) });
    expect(r.snapshots(0)[0].teaching).toBe(true);
    expect(r.snapshots(2)[0].teaching).toBe(false);

    // The gate holds: nothing moves until the teacher says so, and a student cannot say so.
    await sleep(60);
    expect(r.chunkEvents(1)).toHaveLength(0);
    await expect(r.classrooms[1].next()).rejects.toThrow(/teacher/);

    for (let step = 1; step <= 4; step++) {
      await r.classrooms[0].next();
      await until(() => [1, 2].every((k) => r.snapshots(k).length === step + 1), `step ${step} on the students' tabs`);
      for (const tab of [0, 1, 2]) {
        const { snapshot } = r.snapshots(tab)[step];
        expect(snapshot.step).toBe(step);
        expect(snapshot.phase).toBe(step <= 2 ? 'reduce-scatter' : 'all-gather');
        expect(snapshot.perRank.map((s) => s.values)).toEqual(states[step]);
        expect(snapshot.perRank.map((s) => s.received)).toEqual(received[step]);
      }
      // One step per release: no rank ran ahead.
      expect(r.chunkEvents(1).filter((e) => e.direction === 'recv')).toHaveLength(step);
    }
    const totals = initial[0].map((_, i) => initial.reduce((sum, v) => sum + v[i], 0));
    expect(r.snapshots(1)[4].snapshot.perRank.every((s) => s.values.every((v, i) => v === totals[i]))).toBe(true);
    await r.classrooms[0].next(); // past the end: nothing left to release
    expect(r.snapshots(1)).toHaveLength(5);
    expect(r.refusals.flat()).toEqual([]);
  });

  it('refuses a release from a tab that does not teach, and a report in another rank’s name', async () => {
    const r = room(2);
    await r.classrooms[0].load(r.venues[0]);
    await until(() => r.snapshots(1).length === 1, 'the initial snapshot');
    const lesson = r.classrooms[1].current()!.lesson;
    r.inject(1, 1, { kind: 'release', lesson, step: 1 }); // rank 1 tries to release its own lesson
    r.inject(1, 0, { kind: 'state', lesson, step: 1, rank: 0, values: [1, 2, 3, 4] });
    await sleep(40);
    expect(r.chunkEvents(1)).toHaveLength(0);
    expect(r.refusals[1].join('\n')).toMatch(/does not teach/);
    expect(r.refusals[0].join('\n')).toMatch(/reported as rank 0/);
    expect(r.snapshots(0)).toHaveLength(1);
  });

  it('a new lesson replaces the running one on every tab', async () => {
    const r = room(2);
    await r.classrooms[0].load(r.venues[0]);
    await r.classrooms[0].next();
    await r.classrooms[1].load(r.venues[1]); // the other tab takes over as teacher
    await until(() => r.snapshots(0).at(-1)!.runId !== r.snapshots(0)[0].runId, 'the new lesson on the old teacher');
    expect(r.snapshots(0).at(-1)!.teaching).toBe(false);
    await expect(r.classrooms[0].next()).rejects.toThrow(/teacher/);
    await r.classrooms[1].next();
    await r.classrooms[1].next();
    await r.classrooms[1].next(); // a 2-rank ring has 2 steps: this one is past the end
    await until(() => r.snapshots(0).at(-1)!.snapshot.step === 2, 'the last step on the student');
    const last = r.snapshots(0).at(-1)!.snapshot;
    expect(last.step).toBe(2);
    expect(last.perRank[0].values).toEqual(last.perRank[1].values);
  });

  it('needs a loaded lesson and at least two tabs', async () => {
    const r = room(1);
    await expect(r.classrooms[0].next()).rejects.toThrow(/no lesson loaded/);
    await expect(r.classrooms[0].load(r.venues[0])).rejects.toThrow(/at least two tabs/);
  });
});
