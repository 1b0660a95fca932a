// The session's use of a checkpoint store: autosave every K steps, resume=1 from the stored file, and
// the file and key rules. IndexedDB itself is exercised in the browser (e2e/checkpoint.spec.ts); here
// an in-memory store stands in for it.
import { describe, expect, it } from 'vitest';
import { loadCheckpoint } from '../train/checkpoint';
import { checkpointKey, type CheckpointStore, type StoredCheckpointInfo } from './checkpoint-store';
import { DEFAULT_CONFIG, type LabConfig } from './config';
import { EventBus, type LogLine } from '../shared/events';
import { LabSession } from './session';

/** Keeps every save (not just the newest) so the test can resume from an earlier one. */
class MemoryStore implements CheckpointStore {
  saves: { key: string; step: number; bytes: Uint8Array }[] = [];
  resumeFrom: Uint8Array | null = null;
  async put(key: string, bytes: Uint8Array, step: number) {
    this.saves.push({ key, step, bytes });
  }
  async get() {
    return this.resumeFrom;
  }
  async list(): Promise<StoredCheckpointInfo[]> {
    return this.saves.map((s) => ({ key: s.key, step: s.step, bytes: s.bytes.length, savedAt: '' }));
  }
  async delete() {}
}

const config: LabConfig = { ...DEFAULT_CONFIG, model: 'mlp', dataset: 'spirals', backend: 'cpu', batch: 32, steps: 10, seed: 4, autosave: 5 };

async function runSession(cfg: LabConfig, store: CheckpointStore) {
  const bus = new EventBus();
  const logs: string[] = [];
  bus.subscribe((e) => {
    if (e.type === 'log') logs.push((e as LogLine).message);
  });
  const session = new LabSession(cfg, { bus, gpu: undefined, checkpoints: store });
  await session.start();
  expect(session.status().error).toBeNull();
  return { session, logs, hash: await session.paramsHash() };
}

describe('session checkpoints', () => {
  it('autosaves every K steps and at the end; resume=1 continues to the same parameters', async () => {
    const store = new MemoryStore();
    const straight = await runSession(config, store);
    expect(store.saves.map((s) => s.step)).toEqual([5, 10]);
    expect(store.saves[0].key).toBe(checkpointKey(config, 1, 0));
    const saved = loadCheckpoint(store.saves[0].bytes);
    expect(saved.header.step).toBe(5);
    expect(saved.header.lab?.secret).toBeUndefined();

    const resumeStore = new MemoryStore();
    resumeStore.resumeFrom = store.saves[0].bytes;
    const resumed = await runSession({ ...config, resume: true, autosave: 0 }, resumeStore);
    expect(resumed.logs.some((l) => /resumed from a checkpoint of step 5/.test(l))).toBe(true);
    expect(resumed.session.metrics().lossSteps[0]).toBeGreaterThan(5);
    expect(resumed.hash).toBe(straight.hash);
    expect(resumeStore.saves).toEqual([]);
  });

  it('resume=1 with nothing stored starts from step 0 and says so', async () => {
    const { logs, session } = await runSession({ ...config, steps: 2, resume: true, autosave: 0 }, new MemoryStore());
    expect(logs.some((l) => /no checkpoint is stored/.test(l))).toBe(true);
    expect(session.status().step).toBe(2);
  });

  it('a corrupt stored file ends the run with the reason', async () => {
    const store = new MemoryStore();
    await runSession({ ...config, steps: 5 }, store);
    const bad = store.saves[0].bytes.slice();
    bad[bad.length - 40] ^= 0xff;
    store.resumeFrom = bad;
    const session = new LabSession({ ...config, resume: true }, { bus: new EventBus(), gpu: undefined, checkpoints: store });
    await session.start();
    expect(session.status().state).toBe('error');
    expect(session.status().error).toMatch(/corrupt or truncated/);
  });

  it('the key names what a resume must match, and the rank', () => {
    expect(checkpointKey({ model: 'gpt', dataset: 'sotu', seed: 7 }, 4, 2)).toBe('gpt/sotu/seed7/world4/rank2');
  });
});
