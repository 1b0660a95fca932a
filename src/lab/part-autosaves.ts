// Each tab's autosaves of its own part of a model-parallel run (partitioned-session.ts), and the step a
// resumed room restarts from. A tab keeps its part's two newest autosaves, each under its own key (the
// rank's key and `@step<N>`): the new one is written whole before the one before it is removed, so a tab
// lost while writing leaves its older save readable. The tabs of a room write one autosave at about the
// same moment, not at once: a tab lost meanwhile may leave the others holding step s+K while its own
// newest part is step s. On resume=1 the tabs therefore exchange the steps they hold and restart from
// the newest step every tab holds; with no such step the refusal names what each tab holds.
import type { Transport } from '../collective/types';
import { exchangeHashes } from '../parallel/replicas';
import { loadCheckpoint } from '../train/checkpoint';
import type { CheckpointStore } from './checkpoint-store';

/** How many autosaves of its part a tab keeps: the newest, and the one before it for a room lost mid-save. */
export const KEPT_PART_SAVES = 2;

/** A verified autosave of this tab's part. */
export interface HeldPartSave {
  step: number;
  bytes: Uint8Array;
}

export class PartAutosaves {
  /** `key`: the rank's key of this tab's part (partitioned-session.ts checkpointKey). */
  constructor(
    private readonly store: CheckpointStore,
    readonly key: string,
  ) {}

  /** The key of the save of `step`. */
  keyOf(step: number): string {
    return `${this.key}@step${step}`;
  }

  /** Writes the save of `step`, then (only once it is stored) removes the saves older than the kept ones. */
  async save(bytes: Uint8Array, step: number): Promise<void> {
    await this.store.put(this.keyOf(step), bytes, step);
    const stale = (await this.listed()).sort((a, b) => b.step - a.step).slice(KEPT_PART_SAVES);
    for (const old of stale) await this.store.delete(old.key);
  }

  /**
   * The saves this tab holds, newest first, at most the kept number, each read back and verified (a
   * file torn by a lost write fails its CRC); `unreadable` says which were passed over and why.
   */
  async held(): Promise<{ saves: HeldPartSave[]; unreadable: string[] }> {
    const saves: HeldPartSave[] = [];
    const unreadable: string[] = [];
    for (const { step, key } of (await this.listed()).sort((a, b) => b.step - a.step)) {
      if (saves.length === KEPT_PART_SAVES) break;
      const bytes = await this.store.get(key);
      if (!bytes) continue;
      try {
        const saved = loadCheckpoint(bytes).header.step;
        if (saved !== step) throw new Error(`it holds step ${saved}`);
        if (saves.some((held) => held.step === step)) continue;
        saves.push({ step, bytes });
      } catch (error) {
        unreadable.push(`${key}: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    return { saves, unreadable };
  }

  /**
   * The saves stored for this part: under `@step<N>` keys, and the one autosave an older version of the
   * lab kept under the bare key (its step as the store lists it), so that a room saved before keeps it.
   */
  private async listed(): Promise<{ step: number; key: string }[]> {
    const prefix = `${this.key}@step`;
    return (await this.store.list()).flatMap((info) => {
      if (info.key === this.key) return [{ step: info.step, key: info.key }];
      const step = info.key.slice(prefix.length);
      return info.key.startsWith(prefix) && /^\d+$/.test(step) ? [{ step: Number(step), key: info.key }] : [];
    });
  }
}

/** Where a resumed room starts: `step` null when no tab holds any save (every tab starts afresh). */
export interface ResumeStep {
  step: number | null;
  /** Each tab's saves newer than the step chosen, passed over (empty when all tabs hold the same newest). */
  passedOver: { rank: number; steps: number[] }[];
}

const listSteps = (steps: readonly number[]) => (steps.length === 0 ? 'none' : steps.map((s) => `step ${s}`).join(', '));

/**
 * The newest step every tab holds a save of (`held[rank]`: the steps rank holds). Throws, naming what
 * each tab holds, when some tab holds a save and no step is held by all.
 */
export function commonResumeStep(held: readonly (readonly number[])[]): ResumeStep {
  if (held.every((steps) => steps.length === 0)) return { step: null, passedOver: [] };
  const common = held[0].filter((step) => held.every((steps) => steps.includes(step)));
  if (common.length === 0) {
    throw new Error(
      `resume=1: no step whose part every tab holds (${held.map((steps, rank) => `rank ${rank}: ${listSteps(steps)}`).join('; ')}); each tab keeps its part's ${KEPT_PART_SAVES} newest autosaves: start again without resume=1`,
    );
  }
  const step = Math.max(...common);
  const passedOver = held.flatMap((steps, rank) => {
    const newer = steps.filter((s) => s > step);
    return newer.length > 0 ? [{ rank, steps: newer }] : [];
  });
  return { step, passedOver };
}

/** The hash field's value for "no save" (a step is at most 2^53 - 1, never this). */
const NONE = 'f'.repeat(16);

/**
 * Exchanges the steps each tab holds (at most two: the hash field carries the newest, the value the
 * older) over the room and returns the step to resume from (commonResumeStep: every tab gets the same).
 */
export async function agreeOnResumeStep(transport: Transport, round: number, own: readonly number[]): Promise<ResumeStep> {
  if (own.length > KEPT_PART_SAVES) throw new Error(`a tab holds at most ${KEPT_PART_SAVES} saves of its part, got ${own.length}`);
  const [newest, older] = [...own].sort((a, b) => b - a);
  const { hashes, values } = await exchangeHashes(transport, round, newest === undefined ? NONE : newest.toString(16).padStart(16, '0'), undefined, older ?? Number.NaN);
  const held = hashes.map((hash, rank) => [...(hash === NONE ? [] : [parseInt(hash, 16)]), ...(Number.isNaN(values[rank]) ? [] : [values[rank]])]);
  return commonResumeStep(held);
}
