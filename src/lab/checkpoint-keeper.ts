// The run loop's checkpoints: the file a run starts from (one handed in, or resume=1's newest autosave),
// checkpoints asked for during training (taken between two steps, never while a step writes the
// parameters), and autosaves every `autosave` steps and at the end. Checkpoints are of steps whose
// replica check has passed.
import type { Backend } from '../engine/backend';
import type { Gpt } from '../model/gpt';
import type { Mlp } from '../model/mlp';
import { captureCheckpoint, loadCheckpoint, type Checkpoint, type RestoreMode } from '../train/checkpoint';
import type { TrainingRecipe } from '../train/defaults';
import type { Run } from '../train/recipes';
import { checkpointKey, type CheckpointStore } from './checkpoint-store';
import type { LabConfig } from './config';

/** A checkpoint file handed to the session to start from (window.lab.loadCheckpoint, the dashboard). */
export interface StagedCheckpoint {
  bytes: Uint8Array;
  mode: RestoreMode;
}

export interface StartingCheckpoint {
  ckpt: Checkpoint;
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
  /**
   * ZeRO-3 during training: a collective that gathers the whole vector (every rank must call it at the
   * same step, so only autosaves use it), or null when the run holds the vector or it was gathered.
   */
  gatherWhole: () => (() => Promise<Float32Array>) | null;
  training: () => boolean;
  /** Waits for the replica check still on the wire, so that a checkpoint is of a checked step. */
  settleReplicaCheck: () => Promise<void>;
  warn: (message: string) => void;
}

export class CheckpointKeeper {
  private waiters: { resolve: (bytes: Uint8Array) => void; reject: (error: unknown) => void }[] = [];
  /** ZeRO-3: the whole vector gathered for this autosave, dropped once it is taken. */
  private whole: Float32Array | undefined;

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
    const { config } = this.deps;
    const { world, rank, stepsPerEpoch } = this.deps.position();
    return captureCheckpoint(this.deps.backend(), this.deps.run(), {
      recipe: this.deps.recipe(),
      world,
      rank,
      stepsPerEpoch,
      lab: { ...config, secret: undefined, resume: undefined },
      vocab: this.deps.vocab() ?? undefined,
      dataset: config.dataset,
      fullParams: this.whole ?? this.deps.fullParams(),
    });
  }

  /** Between two steps: serves the checkpoints asked for, and autosaves when one is due. */
  async betweenSteps(): Promise<void> {
    const { step, steps } = this.deps.position();
    const every = this.deps.config.autosave;
    const autosave = this.deps.store !== null && every > 0 && (step % every === 0 || step === steps);
    // ZeRO-3: a checkpoint needs the whole vector, gathered by every rank at once: asked-for checkpoints
    // wait for an autosave step or the end of the run (the last step's autosave comes then too).
    const gather = this.deps.gatherWhole();
    if (gather && (!autosave || step === steps)) return;
    // Checkpoints are of steps whose replica check has passed.
    if (autosave || this.waiters.length > 0) await this.deps.settleReplicaCheck();
    this.whole = gather ? await gather() : undefined;
    try {
      await this.serveWaiting();
      if (autosave) await this.autosave();
    } finally {
      this.whole = undefined;
    }
  }

  /** The end of the run: takes the checkpoints still asked for, and (ZeRO-3) the last step's autosave. */
  async afterRun(): Promise<void> {
    await this.serveWaiting();
    const { step, steps } = this.deps.position();
    const every = this.deps.config.autosave;
    if (this.deps.gatherWhole() === null && this.deps.fullParams() && this.deps.store !== null && every > 0 && step === steps) await this.autosave();
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
    if (staged) return { ckpt: loadCheckpoint(staged.bytes), mode: staged.mode, source: 'a loaded file' };
    if (!config.resume) return null;
    const key = this.key();
    const bytes = store ? await store.get(key) : null;
    if (!bytes) {
      this.deps.warn(`resume=1 but no checkpoint is stored under ${key}: starting from step 0`);
      return null;
    }
    return { ckpt: loadCheckpoint(bytes), mode: 'resume', source: `browser storage, ${key}` };
  }
}
