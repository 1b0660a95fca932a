// The part autosaves of a model-parallel room (part-autosaves.ts): the two newest kept, a lost write
// leaving the older whole, the room agreeing on the newest step every tab holds (or refusing, naming what
// each holds), and a real two-stage pipeline resumed from parts one autosave apart ending on the bits of a
// run that never stopped. IndexedDB itself is exercised in the browser (e2e/pipeline.spec.ts); here an
// in-memory store stands in for it.
import { describe, expect, it } from 'vitest';
import { createMemoryMesh } from '../collective/memory-transport';
import { paramsHash } from '../model/layout';
import type { CheckpointStore, StoredCheckpointInfo } from './checkpoint-store';
import { testConfig } from './parallel-test-support';
import { agreeOnResumeStep, commonResumeStep, PartAutosaves } from './part-autosaves';
import { classification, memoryRoom, trainRoom } from './partitioned-test-support';
import { PIPELINE_RUN_KIND } from './pipeline-run';

/** One record per key, as IndexedDB keeps them; `tornNext` makes the next put store half the file and throw (a tab lost mid-write). */
class MemoryStore implements CheckpointStore {
  readonly records = new Map<string, { step: number; bytes: Uint8Array }>();
  tornNext = false;
  async put(key: string, bytes: Uint8Array, step: number) {
    if (this.tornNext) {
      this.tornNext = false;
      this.records.set(key, { step, bytes: bytes.slice(0, bytes.length >> 1) });
      throw new Error('the tab was lost mid-write');
    }
    this.records.set(key, { step, bytes: bytes.slice() });
  }
  async get(key: string) {
    return this.records.get(key)?.bytes ?? null;
  }
  async list(): Promise<StoredCheckpointInfo[]> {
    return [...this.records].map(([key, r]) => ({ key, step: r.step, bytes: r.bytes.length, savedAt: '' }));
  }
  async delete(key: string) {
    this.records.delete(key);
  }
}

const config = testConfig({ room: 'r', steps: 6, pipeline: 2, world: 2, micro: 2 });

/**
 * A two-stage room trained `steps` steps, each stage's part autosaved every 2 steps into `store` under
 * its rank's key; `lost`: that rank's tab is lost while writing that step's save (torn, never finished).
 */
async function trainSaving(store: MemoryStore, steps: number, lost?: { rank: number; step: number }) {
  const { runs } = memoryRoom(PIPELINE_RUN_KIND, config, classification, 2);
  const autosaves = runs.map((_, rank) => new PartAutosaves(store, `k/rank${rank}`));
  for (let step = 1; step <= steps; step++) {
    await Promise.all(runs.map((r) => r.trainStep()));
    if (step % 2 !== 0) continue;
    for (const [rank, run] of runs.entries()) {
      const file = await run.checkpoint({ world: 2, rank, vocab: null });
      if (lost?.rank !== rank || lost.step !== step) await autosaves[rank].save(file, step);
      else {
        store.tornNext = true;
        await expect(autosaves[rank].save(file, step)).rejects.toThrow(/lost mid-write/);
      }
    }
  }
  return { runs, autosaves };
}

describe('part autosaves', () => {
  it('keep the two newest saves of each part, and each part only its own', async () => {
    const store = new MemoryStore();
    const { runs } = await trainSaving(store, 6);
    expect([...store.records.keys()].sort()).toEqual(['k/rank0@step4', 'k/rank0@step6', 'k/rank1@step4', 'k/rank1@step6']);
    const held = await new PartAutosaves(store, 'k/rank1').held();
    expect(held.saves.map((s) => s.step)).toEqual([6, 4]);
    expect(held.unreadable).toEqual([]);
    for (const run of runs) run.dispose();
  });

  it('a tab lost mid-write leaves its older save readable; the torn file is passed over, with why', async () => {
    const store = new MemoryStore();
    const { runs, autosaves } = await trainSaving(store, 6, { rank: 0, step: 6 });
    const held = await autosaves[0].held();
    // The older two are both still there (nothing was removed before the new save was whole).
    expect(held.saves.map((s) => s.step)).toEqual([4, 2]);
    expect(held.unreadable).toEqual([expect.stringMatching(/^k\/rank0@step6: .*(truncated|corrupt)/)]);
    for (const run of runs) run.dispose();
  });

  it('an autosave an older version kept under the bare key is held (its step from the store) until two newer saves replace it', async () => {
    const store = new MemoryStore();
    await trainSaving(store, 4);
    // What the lab before the two-save autosaves left: one file per part under the bare key.
    const old = store.records.get('k/rank0@step4')!;
    store.records.clear();
    store.records.set('k/rank0', old);
    const autosaves = new PartAutosaves(store, 'k/rank0');
    expect((await autosaves.held()).saves.map((s) => s.step)).toEqual([4]);
    await autosaves.save(old.bytes, 4);
    expect((await autosaves.held()).saves.map((s) => s.step)).toEqual([4]);
    expect([...store.records.keys()].sort()).toEqual(['k/rank0', 'k/rank0@step4']);
    store.records.set('k/rank0@step6', old);
    await autosaves.save(old.bytes, 8);
    // Steps 8 and 6 are the two newest: the bare key's step 4 is removed with the @step4 file.
    expect([...store.records.keys()].sort()).toEqual(['k/rank0@step6', 'k/rank0@step8']);
  });

  it('the room agrees on the newest step every tab holds, and names the newer ones passed over', () => {
    expect(commonResumeStep([[8, 4], [4, 0]])).toEqual({ step: 4, passedOver: [{ rank: 0, steps: [8] }] });
    expect(commonResumeStep([[8, 4], [8, 4], [8]])).toEqual({ step: 8, passedOver: [] });
    expect(commonResumeStep([[], [], []])).toEqual({ step: null, passedOver: [] });
  });

  it('no common step: the refusal names the steps each tab holds', () => {
    expect(() => commonResumeStep([[12, 8], [4]])).toThrow(/resume=1: no step whose part every tab holds \(rank 0: step 12, step 8; rank 1: step 4\)/);
    expect(() => commonResumeStep([[4], []])).toThrow(/rank 0: step 4; rank 1: none\)/);
  });

  it('the exchange over a room gives every tab the same step (three tabs, each holding another pair)', async () => {
    const held = [[12, 8], [8, 4], [8]];
    const agreed = await Promise.all(createMemoryMesh(3).map((t, rank) => agreeOnResumeStep(t, 0xffff_fffe, held[rank])));
    for (const a of agreed) expect(a).toEqual({ step: 8, passedOver: [{ rank: 0, steps: [12] }] });
    const refused = createMemoryMesh(2).map((t, rank) => agreeOnResumeStep(t, 0xffff_fffe, [[6], []][rank]));
    for (const r of refused) await expect(r).rejects.toThrow(/rank 0: step 6; rank 1: none/);
  });

  it('stages whose newest saves are one autosave apart resume from the older common step to the bits of an uninterrupted run', async () => {
    const { runs: straight } = memoryRoom(PIPELINE_RUN_KIND, config, classification, 2);
    const { hashes } = await trainRoom(straight, config.steps);
    // Stage 1's tab is lost while the room writes step 6's autosave: stage 0 holds 6 and 4, stage 1 only 4 and 2.
    const store = new MemoryStore();
    const { runs: lost } = await trainSaving(store, 6, { rank: 1, step: 6 });
    const { runs: resumed } = memoryRoom(PIPELINE_RUN_KIND, config, classification, 2);
    const held = await Promise.all([0, 1].map((rank) => new PartAutosaves(store, `k/rank${rank}`).held()));
    expect(held.map((h) => h.saves.map((s) => s.step))).toEqual([[6, 4], [4, 2]]);
    const agreed = await Promise.all(createMemoryMesh(2).map((t, rank) => agreeOnResumeStep(t, 0xffff_fffe, held[rank].saves.map((s) => s.step))));
    expect(agreed).toEqual([0, 1].map(() => ({ step: 4, passedOver: [{ rank: 0, steps: [6] }] })));
    for (const [rank, run] of resumed.entries()) run.restore(held[rank].saves.find((s) => s.step === 4)!.bytes, 2);
    expect(resumed.map((r) => r.step)).toEqual([4, 4]);
    // At step 4 each stage holds the bits the unbroken run held after step 4, and it ends on its bits.
    for (const [rank, run] of resumed.entries()) expect(paramsHash(await run.partParams())).toBe(hashes[3][rank]);
    for (let step = 4; step < config.steps; step++) await Promise.all(resumed.map((r) => r.trainStep()));
    for (const [rank, run] of resumed.entries()) expect(paramsHash(await run.partParams())).toBe(hashes[config.steps - 1][rank]);
    for (const run of [...straight, ...lost, ...resumed]) run.dispose();
  });
});

