// The run loop's checkpoints: the file a run starts from (one handed in, or resume=1's newest autosave),
// checkpoints asked for during training (taken between two steps, never while a step writes the
// parameters), and autosaves every `autosave` steps and at the end. Checkpoints are of steps whose
// replica check has passed.
// A run that holds a part of the parameters (ZeRO-3: its shard) saves that part and its optimizer
// slice, never the whole vector, with the partition recorded (train/checkpoint.ts `part`); a file
// handed in as several parts is re-cut to the range this rank holds (combineCheckpointParts). The
// whole model leaves a sharded run only through exportModel, streamed a piece at a time.
import { viewOf, type Backend } from '../engine/backend';
import type { Gpt } from '../model/gpt';
import type { Mlp } from '../model/mlp';
import { captureCheckpoint, checkpointHeaderOf, heldRange, loadCheckpoint, type Checkpoint, type CheckpointHeader, type CheckpointMeta, type CheckpointPart, type RestoreMode } from '../train/checkpoint';
import { CheckpointStreamWriter, combineCheckpointParts, type ByteSink } from '../train/checkpoint-parts';
import type { TrainingRecipe } from '../train/defaults';
import type { Run } from '../train/recipes';
import { checkpointKey, type CheckpointStore } from './checkpoint-store';
import type { LabConfig } from './config';

/** A checkpoint file handed to the session to start from (window.lab.loadCheckpoint, the dashboard). */
export interface StagedCheckpoint {
  /** One file, or the parts of one checkpoint (every part overlapping this rank's range is needed). */
  bytes: Uint8Array | Uint8Array[];
  mode: RestoreMode;
}

export interface StartingCheckpoint {
  /** The first part: its header says what the file is. */
  ckpt: Checkpoint;
  /** Every part given (one for a whole file). */
  parts: Checkpoint[];
  mode: RestoreMode;
  source: string;
}

/** What the keeper reads of the running session, when it needs it. */
export interface CheckpointKeeperDeps {
  config: LabConfig;
  /** Where autosaves go and resume=1 reads from (null: none). */
  store: CheckpointStore | null;
  staged: StagedCheckpoint | undefined;
  run: () => Run<Mlp> | Run<Gpt>;
  backend: () => Backend;
  recipe: () => TrainingRecipe;
  position: () => { world: number; rank: number; step: number; steps: number; stepsPerEpoch: number };
  vocab: () => string[] | null;
  /** ZeRO-3: the whole parameter vector gathered when the run ended (undefined: the run holds it, or training). */
  fullParams: () => Float32Array | undefined;
  /** The part of the parameters this run holds (ZeRO-3: its shard), or null when it holds them all. */
  part: () => CheckpointPart | null;
  /**
   * ZeRO-3: the collective that gathers the whole parameters and optimizer state a piece at a time
   * (Strategy.gatherInPieces; every rank joins), or null when the run holds them.
   */
  gatherInPieces: () => ((round: number, each: (floats: Float32Array) => Promise<void>) => Promise<void>) | null;
  training: () => boolean;
  /** Waits for the replica check still on the wire, so that a checkpoint is of a checked step. */
  settleReplicaCheck: () => Promise<void>;
  warn: (message: string) => void;
}

export class CheckpointKeeper {
  private waiters: { resolve: (bytes: Uint8Array) => void; reject: (error: unknown) => void }[] = [];

  constructor(private readonly deps: CheckpointKeeperDeps) {}

  /**
   * This tab's checkpoint (parameters, optimizer state, step). During training it is taken between two
   * steps, never while a step is writing the parameters.
   */
  checkpoint(): Promise<Uint8Array> {
    if (this.deps.training()) return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
    return this.capture();
  }

  /** Whether a file was handed in to start from. */
  hasStaged(): boolean {
    return !!this.deps.staged;
  }

  /** The key this run autosaves under and resumes from (see checkpoint-store.ts). */
  key(): string {
    const { world, rank } = this.deps.position();
    return checkpointKey(this.deps.config, world, rank);
  }

  capture(): Promise<Uint8Array> {
    return captureCheckpoint(this.deps.backend(), this.deps.run(), { ...this.meta(), fullParams: this.deps.fullParams(), part: this.deps.part() ?? undefined });
  }

  private meta(): CheckpointMeta {
    const { config } = this.deps;
    const { world, rank, stepsPerEpoch } = this.deps.position();
    return {
      recipe: this.deps.recipe(),
      world,
      rank,
      stepsPerEpoch,
      lab: { ...config, secret: undefined, resume: undefined },
      vocab: this.deps.vocab() ?? undefined,
      dataset: config.dataset,
    };
  }

  /**
   * Writes the whole model (parameters and optimizer state) to `sink` in the one-tab checkpoint format,
   * so that it loads anywhere. A run holding a part gathers the rest a piece at a time (a collective:
   * every rank of the room exports at the same point) and never holds the whole vector; a run holding
   * it all reads it. Returns the header written.
   */
  async exportModel(sink: ByteSink, createdAt?: string): Promise<CheckpointHeader> {
    const run = this.deps.run();
    const total = run.model.layout.totalLength;
    // Every rank writes the same file: the whole model, as rank 0 of the run's world.
    const base = checkpointHeaderOf(run, { ...this.meta(), rank: 0, createdAt }, { stateRange: { offset: 0, length: total } });
    const header: CheckpointHeader = { ...base, sections: ['params', ...base.optimizer.buffers].map((name) => ({ name, length: total })) };
    const writer = new CheckpointStreamWriter(header, sink);
    const gather = this.deps.gatherInPieces();
    if (gather) {
      await gather(this.deps.position().step, (floats) => writer.write(floats));
    } else {
      if (run.optimizer.stateRange.length !== total) throw new Error('this run holds a slice of the optimizer state and cannot gather the rest: export it from a run that holds all of it');
      await writer.write(await this.deps.backend().read(viewOf(run.model.params)));
      for (const { buf } of run.optimizer.stateBuffers()) await writer.write(await run.optimizer.backend.read(viewOf(buf)));
    }
    await writer.close();
    return header;
  }

  /** Between two steps: serves the checkpoints asked for, and autosaves when one is due. */
  async betweenSteps(): Promise<void> {
    const { step, steps } = this.deps.position();
    const every = this.deps.config.autosave;
    const autosave = this.deps.store !== null && every > 0 && (step % every === 0 || step === steps);
    if (!autosave && this.waiters.length === 0) return;
    // Checkpoints are of steps whose replica check has passed.
    await this.deps.settleReplicaCheck();
    await this.serveWaiting();
    if (autosave) await this.autosave();
  }

  /** The end of the run: takes the checkpoints still asked for. */
  async afterRun(): Promise<void> {
    await this.serveWaiting();
  }

  /** Takes the checkpoints asked for since the last step (also when the run ends). */
  async serveWaiting(): Promise<void> {
    for (const waiter of this.waiters.splice(0)) {
      try {
        waiter.resolve(await this.capture());
      } catch (error) {
        waiter.reject(error);
      }
    }
  }

  /** A failed save (storage full, private mode) is shown but does not stop training. */
  private async autosave(): Promise<void> {
    const { step } = this.deps.position();
    try {
      const bytes = await this.capture();
      await this.deps.store!.put(this.key(), bytes, step);
    } catch (error) {
      this.deps.warn(`autosave at step ${step} failed: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  /** The file to start from: one handed in, else (resume=1) this run's newest autosave. Verified here. */
  async starting(): Promise<StartingCheckpoint | null> {
    const { staged, config, store } = this.deps;
    if (staged) {
      const files = Array.isArray(staged.bytes) ? staged.bytes : [staged.bytes];
      if (files.length === 0) throw new Error('no checkpoint file given');
      const parts = files.map((bytes) => loadCheckpoint(bytes));
      return { ckpt: parts[0], parts, mode: staged.mode, source: parts.length > 1 ? `${parts.length} loaded parts` : 'a loaded file' };
    }
    if (!config.resume) return null;
    const key = this.key();
    const bytes = store ? await store.get(key) : null;
    if (!bytes) {
      this.deps.warn(`resume=1 but no checkpoint is stored under ${key}: starting from step 0`);
      return null;
    }
    const ckpt = loadCheckpoint(bytes);
    return { ckpt, parts: [ckpt], mode: 'resume', source: `browser storage, ${key}` };
  }

  /** The starting checkpoint cut to what the built run holds: one file as it is, parts re-cut to the run's range. */
  fitted(start: StartingCheckpoint): Checkpoint {
    return start.parts.length === 1 ? start.ckpt : combineCheckpointParts(start.parts, heldRange(this.deps.run()));
  }
}
