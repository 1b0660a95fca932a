// The single-tab step loop. One optimizer step = zero the gradients, k micro-batches of forward and
// backward (gradient accumulation: each loss gradient scaled by 1 / (predictions * k), so the sum is the
// gradient of the step's mean loss), the gradient sync hook (identity on one tab; the data-parallel
// all-reduce plugs in here), global-norm clipping, the update. Losses stay on the device and are read
// back only every `logEvery` steps or when asked.
import { alignUp, type Backend, type DeviceBuffer, viewOf } from '../engine/backend';
import type { EvalMetrics, LabEvent, SampleText, StepMetrics } from '../shared/events';
import { Mlp } from '../model/mlp';
import type { FlatRange } from '../model/layout';
import type { Batch, ForwardResult, GradHooks, Model } from '../model/model';
import type { BatchSource } from './batches';
import { EagerUpdates } from './eager-update';
import { ForwardPrefetch } from './forward-prefetch';
import { intersectionMs, unionMs, type Interval } from './intervals';
import { GradClipper, type Optimizer } from './optimizer';

export interface GradSyncContext {
  /** 0-based optimizer step being taken. */
  step: number;
  /**
   * Milliseconds this rank computed the step's forward and backward passes (until the device finished
   * them), those blocks of its forward that ran during the previous step's sync included.
   */
  computeMs?: number;
  grads: DeviceBuffer;
  model: Model;
  /**
   * Present when the trainer may update ranges of the parameters while the sync still runs (no
   * global-norm clipping, the whole optimizer state on this rank): call it with each range as soon as
   * its gradient is final (averaged). Returns false for a range it cannot update on its own; the
   * trainer updates whatever was not updated after the sync. Absent: update nothing.
   */
  applyUpdate?: (range: FlatRange) => boolean;
}

export interface GradSyncResult {
  bytesSent?: number;
  bytesReceived?: number;
  /** Part of the sync spent waiting on slower peers rather than moving bytes. */
  waitMs?: number;
  /**
   * Communication busy time, when the hook overlapped it with computation (data parallelism launches
   * buckets during the backward pass): then the hook's own duration is only the exposed part. Absent:
   * the hook's duration minus waitMs.
   */
  commMs?: number;
  /**
   * When communication ran (overlapped hooks): the trainer measures how much of it its own
   * computation hid. Absent: the hook's communication ran while the trainer waited, overlapping nothing.
   */
  commIntervals?: Interval[];
}

export interface TrainerOptions {
  backend: Backend;
  model: Model;
  optimizer: Optimizer;
  batches: BatchSource;
  /** Learning rate for a 0-based step (a schedule); the optimizer's configured rate if absent. */
  learningRate?: (step: number) => number;
  /** Global gradient-norm clip; 0 or absent turns clipping off. */
  clipNorm?: number;
  /**
   * Runs after backward and before clipping and the update. Absent: single tab, nothing to do. Each
   * rank's gradients are of the mean loss of its own share, so a data-parallel sync must AVERAGE them
   * over the ranks (sum / world) to get the gradient of the global batch's mean loss.
   */
  gradSync?: (ctx: GradSyncContext) => Promise<GradSyncResult | void>;
  /**
   * Runs after the update (e.g. ZeRO: the optimizer updated this rank's shard only, so the updated
   * parameters are all-gathered here). Its time counts as communication.
   */
  afterUpdate?: (ctx: GradSyncContext) => Promise<GradSyncResult | void>;
  /**
   * false: this rank neither clips nor applies the optimizer (a parameter-server worker: the server
   * updates, and afterUpdate brings its parameters). Default true.
   */
  localUpdate?: boolean;
  /**
   * Records forward and backward layer by layer, with awaits between layers (ZeRO-3 all-gathers each
   * layer's parameters just before its forward and its backward). Absent: model.forward/backward.
   */
  layerwise?: LayerwisePasses;
  /**
   * true: gradSync hands ranges to GradSyncContext.applyUpdate as they are averaged (data parallelism).
   * Without clipping the trainer then updates them at once, and holds a copy of the parameters and the
   * optimizer state to put back if the sync fails (eager-update.ts); `eagerSnapshotBytes` says how much.
   */
  eagerUpdates?: boolean;
  /**
   * With eager updates, start the next step's forward while this step's averages land, each block of
   * the model's first layer as soon as its parameters are updated (forward-prefetch.ts; models with
   * startForward). Same bits either way. Default true.
   */
  prefetchForward?: boolean;
  /**
   * Communication that no hook of this trainer ran but that was on the wire during the step (the
   * previous step's replica-check hash exchange, overlapped with this step): its busy intervals within
   * [from, to]. It counts in the step's communication time, without counting twice what the hooks' own
   * communication already covers.
   */
  alongsideComm?: (from: number, to: number) => Interval[];
  /** Passed to every micro-batch's backward (the data-parallel trainer buckets from the last one). */
  gradHooks?: (step: number, micro: number) => GradHooks | undefined;
  /** Samples per step over the whole room (for samples/s); this rank's rowsPerStep by default. */
  globalBatch?: number;
  rank?: number;
  /** Generates a text sample (char models): `sample()` emits it as a SampleText event. */
  sampler?: (step: number) => Promise<string>;
  /** Read the loss back and emit StepMetrics every this many steps (default 10). */
  logEvery?: number;
  onEvent?: (event: LabEvent) => void;
}

export interface LayerwisePasses {
  forward(batch: Batch, gradScale: number, step: number): Promise<ForwardResult>;
  /** The backward of the last forward; gradients of micro-batch `micro` of optimizer step `step`. */
  backward(step: number, micro: number, hooks: GradHooks | undefined): Promise<void>;
}

export interface EvalResult {
  loss: number;
  /** Classifiers only. */
  accuracy?: number;
}

export class Trainer {
  private completed = 0;
  private readonly lossBuf: DeviceBuffer;
  private readonly lossSlot: number;
  private readonly lossRows: number[] = [];
  private readonly clipper: GradClipper | undefined;
  /** The loss read of the step it belongs to, cached so that asking twice reads once. */
  private lossRead: { step: number; value: Promise<number> } | undefined;
  /** The step in progress, if any. */
  private running: Promise<void> | undefined;
  /** Updates ranges as the sync finalises them (data parallelism without clipping); see eager-update.ts. */
  private readonly eager: EagerUpdates | undefined;
  /** Whether the next step's forward is started during this step's sync (see TrainerOptions.prefetchForward). */
  private readonly prefetching: boolean;
  /** The next step's forward, started during the last step's sync. */
  private prefetched: ForwardPrefetch | undefined;
  private prefetchCount = 0;
  /** The gradient announcements of the last backward that had hooks, replayed on a zero-share step. */
  private announced: [FlatRange, string][] | undefined;

  constructor(private readonly o: TrainerOptions) {
    const k = o.batches.microBatches;
    this.lossSlot = alignUp(o.model.maxLossRows);
    this.lossBuf = o.backend.alloc(this.lossSlot * k, 'trainer.losses', 'workspace');
    this.clipper = o.clipNorm ? new GradClipper(o.backend) : undefined;
    const wholeLayout = o.optimizer.stateRange.length === o.model.layout.totalLength;
    const eagerPossible = wholeLayout && EagerUpdates.possible(o.backend, o.optimizer, o.model.params, o.model.grads);
    if (o.eagerUpdates && o.gradSync && o.localUpdate !== false && !o.clipNorm && eagerPossible) {
      this.eager = new EagerUpdates(o.backend, o.optimizer, o.model.params, o.model.grads, o.model.layout);
    }
    this.prefetching = this.eager !== undefined && !o.layerwise && o.model.startForward !== undefined && o.prefetchForward !== false;
  }

  /** Optimizer steps completed. Setting it (a restored checkpoint) drops a forward started for the old next step. */
  get step(): number {
    return this.completed;
  }
  set step(value: number) {
    this.completed = value;
    this.prefetched = undefined;
  }

  /** Steps whose forward was started during the previous step's sync (at least one block recorded early). */
  get prefetchedSteps(): number {
    return this.prefetchCount;
  }

  /** Device bytes held for rolling back eager updates (0 when the trainer updates after the sync). */
  get eagerSnapshotBytes(): number {
    return this.eager?.snapshotBytes ?? 0;
  }

  /**
   * Records and runs one optimizer step. Resolves when the device has finished it, except for the last
   * eager updates, which it may still be running: every later read or op is ordered after them.
   */
  trainStep(): Promise<void> {
    if (this.running) throw new Error('trainStep called while a step is running: await the previous one');
    this.running = this.runStep().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async runStep(): Promise<void> {
    const { backend: b, model, batches, optimizer } = this.o;
    const step = this.step;
    const k = batches.microBatches;
    // An uneven share of the global batch (elastic rooms, unequal tabs) weighs its gradient by its size (sampler.ts).
    const weight = batches.shareWeightAt?.(step) ?? batches.shareWeight ?? 1;
    const t0 = performance.now();
    b.fill(viewOf(model.grads), 0);
    const prefetched = this.takePrefetched(step);
    // A zero share (batch-shares.ts: a tab too slow to be worth one micro-batch): nothing to compute;
    // the gradient stays exactly zero, weighs 0 in the room's average, and is announced as the backward
    // would announce it, so the tab still takes part in the sync and applies the same update.
    const idle = weight === 0;
    if (idle) this.announceZeroGradients(step, k);
    for (let m = 0; m < k && !idle; m++) {
      let rows: number;
      let result: ForwardResult;
      const layerwise = this.o.layerwise;
      if (m === 0 && prefetched) {
        rows = prefetched.forward.lossRows;
        result = prefetched.forward.finish(weight / (rows * k));
      } else {
        const batch = batches.next(step, m);
        rows = model.lossRowsOf(batch);
        result = layerwise ? await layerwise.forward(batch, weight / (rows * k), step) : model.forward(batch, weight / (rows * k));
      }
      b.copy(viewOf(this.lossBuf, m * this.lossSlot, rows), viewOf(result.losses.buf, result.losses.offset, rows));
      this.lossRows[m] = rows;
      if (layerwise) await layerwise.backward(step, m, this.o.gradHooks?.(step, m));
      else model.backward(this.recordAnnouncements(this.o.gradHooks?.(step, m)));
    }
    await b.flush();
    const t1 = performance.now();
    const lr = this.o.learningRate?.(step);
    const eager = this.eager;
    eager?.begin(step + 1, lr);
    const next = eager && this.prefetching && batches.shareWeightAt?.(step + 1) !== 0 ? this.startNext(step + 1) : undefined;
    const applyUpdate = eager && ((range: FlatRange) => {
      const applied = eager.apply(range);
      if (applied) next?.advance(eager.updated);
      return applied;
    });
    let sync: GradSyncResult;
    try {
      // This step's passes: from its start until the device finished them, plus the blocks of its
      // forward that ran early, during the previous step's sync.
      const computeMs = unionMs([[t0, t1], ...(prefetched?.busyWithin(0, t1) ?? [])]);
      sync = (await this.o.gradSync?.({ step, computeMs, grads: model.grads, model, applyUpdate })) ?? {};
    } catch (error) {
      // A step is never half applied: put back what was updated before the sync failed.
      const restored = (await eager?.rollback()) ?? 0;
      if (restored > 0) {
        this.o.onEvent?.({
          type: 'log',
          level: 'warn',
          message: `step ${step + 1} not applied: the gradient sync failed after ${restored} parameters were updated early; they were restored`,
          t: performance.now(),
        });
      }
      throw error;
    }
    const t2 = performance.now();
    // Eager updates that covered every parameter leave nothing to record. They are not waited for: the
    // device runs them before anything recorded later, reads of the parameters included.
    let recorded = eager === undefined;
    if (this.o.localUpdate !== false) {
      if (this.clipper && this.o.clipNorm) this.clipper.clip(model.grads, this.o.clipNorm);
      if (eager) {
        for (const range of eager.rest()) {
          optimizer.update(model.params, model.grads, step + 1, lr, range);
          recorded = true;
        }
      } else optimizer.update(model.params, model.grads, step + 1, lr);
    }
    if (recorded) await b.flush();
    const t3a = performance.now();
    const gather = (await this.o.afterUpdate?.({ step, grads: model.grads, model })) ?? {};
    const t3 = performance.now();
    this.completed++;
    // Kept only if its blocks were recorded after the updates they read, all of which stand now.
    this.prefetched = next;
    const logEvery = this.o.logEvery ?? 10;
    if (this.o.onEvent && (this.step % logEvery === 0 || this.step === 1)) {
      const stepMs = t3 - t0;
      // Blocks of a forward started early count in the step during which they ran: the next step's, and
      // whatever of this step's own was still running when it started.
      const prefetchIntervals = [prefetched, next].flatMap((p) => p?.busyWithin(t0, t3) ?? []);
      const computeIntervals: Interval[] = [[t0, t1], [t2, t3a], ...(eager?.busyWithin(t0, t3) ?? []), ...prefetchIntervals];
      const waitMs = (sync.waitMs ?? 0) + (gather.waitMs ?? 0);
      // The hooks' communication ran within their own intervals, or (not overlapped) within the hook.
      const hookComm: Interval[] = [...(sync.commIntervals ?? [[t1, t2]]), ...(gather.commIntervals ?? [[t3a, t3]])];
      const alongside = this.o.alongsideComm?.(t0, t3) ?? [];
      const alongsideMs = unionMs(alongside) - intersectionMs(alongside, hookComm);
      const metricsBase = {
        type: 'step' as const,
        rank: this.o.rank ?? 0,
        step: this.step,
        samplesPerSec: ((this.o.globalBatch ?? batches.rowsPerStep) * 1000) / stepMs,
        // Compute is the forward and backward (until the device finished them) and the update, part of
        // which may have run during the sync (eager updates).
        computeMs: unionMs(computeIntervals),
        overlapMs: intersectionMs(computeIntervals, [...(sync.commIntervals ?? []), ...(gather.commIntervals ?? []), ...alongside]),
        commMs: (sync.commMs ?? t2 - t1 - (sync.waitMs ?? 0)) + (gather.commMs ?? t3 - t3a - (gather.waitMs ?? 0)) + alongsideMs,
        waitMs,
        stepMs,
        bytesSent: (sync.bytesSent ?? 0) + (gather.bytesSent ?? 0),
        bytesReceived: (sync.bytesReceived ?? 0) + (gather.bytesReceived ?? 0),
        t: t3,
      };
      const onEvent = this.o.onEvent;
      // The read is recorded now, before the caller can start the next step and overwrite the losses.
      void this.lossOfCurrentStep().then((loss) => onEvent({ ...metricsBase, loss } satisfies StepMetrics));
    }
  }

  /** Passes the backward's announcements on, keeping them for a zero-share step to replay. */
  private recordAnnouncements(hooks: GradHooks | undefined): GradHooks | undefined {
    if (!hooks) return undefined;
    const seen: [FlatRange, string][] = [];
    this.announced = seen;
    return {
      onGradReady: (range, group) => {
        seen.push([range, group]);
        hooks.onGradReady(range, group);
      },
    };
  }

  /** A zero-share step: its (zero) gradients announced in the order the last backward announced them. */
  private announceZeroGradients(step: number, k: number): void {
    for (let m = 0; m < k; m++) this.lossRows[m] = 0;
    const hooks = this.o.gradHooks?.(step, k - 1);
    if (!hooks) return;
    if (!this.announced) throw new Error(`step ${step + 1}: a zero share before any backward pass (shares start even)`);
    for (const [range, group] of this.announced) hooks.onGradReady(range, group);
  }

  /**
   * Uploads the first micro-batch of `step` and returns it begun, for its first-layer blocks to be
   * recorded as their parameters are updated.
   */
  private startNext(step: number): ForwardPrefetch {
    const started = this.o.model.startForward!(this.o.batches.next(step, 0));
    return new ForwardPrefetch(this.o.backend, step, started);
  }

  /** The forward started for `step` during the last sync, if it is still the model's current forward. */
  private takePrefetched(step: number): ForwardPrefetch | undefined {
    const prefetched = this.prefetched;
    this.prefetched = undefined;
    if (!prefetched || prefetched.step !== step || !prefetched.forward.current) return undefined;
    if (prefetched.forward.recorded > 0) this.prefetchCount++;
    return prefetched;
  }

  /**
   * Mean training loss of the last completed step on this rank. Reads back only when called (the
   * read is ordered after that step's work and before the next step overwrites the losses).
   */
  async lastLoss(): Promise<number> {
    // Mid-step the loss slots are being overwritten: wait for the step, then read its loss.
    if (this.running) await this.running.catch(() => undefined);
    if (this.step === 0) throw new Error('no step has been taken yet');
    return this.lossOfCurrentStep();
  }

  private lossOfCurrentStep(): Promise<number> {
    if (this.lossRead?.step !== this.step) {
      this.lossRead = { step: this.step, value: this.readStepLoss(this.o.batches.microBatches) };
    }
    return this.lossRead.value;
  }

  /** Runs `steps` optimizer steps. */
  async train(steps: number): Promise<void> {
    for (let i = 0; i < steps; i++) await this.trainStep();
  }

  /** Mean loss (and accuracy, for a classifier) over fixed held-out batches; emits EvalMetrics. */
  async evaluate(batches: Batch[]): Promise<EvalResult> {
    const { backend: b, model } = this.o;
    let lossSum = 0;
    let rows = 0;
    let correct = 0;
    const classifier = model.kind === 'mlp';
    for (const batch of batches) {
      const r = this.o.layerwise ? await this.o.layerwise.forward(batch, 0, this.step) : model.forward(batch, 0);
      const [losses, probs] = await Promise.all([b.read(r.losses), classifier ? b.read(r.probs) : undefined]);
      for (let i = 0; i < r.lossRows; i++) lossSum += losses[i];
      rows += r.lossRows;
      if (probs) {
        const predicted = Mlp.argmax(probs, r.lossRows, r.classes);
        for (let i = 0; i < r.lossRows; i++) if (predicted[i] === batch.targets[i]) correct++;
      }
    }
    if (rows === 0) throw new Error('evaluation needs at least one batch');
    const result: EvalResult = { loss: lossSum / rows, ...(classifier ? { accuracy: correct / rows } : {}) };
    this.o.onEvent?.({
      type: 'eval',
      rank: this.o.rank ?? 0,
      step: this.step,
      valLoss: result.loss,
      ...(result.accuracy !== undefined ? { accuracy: result.accuracy } : {}),
      t: performance.now(),
    } satisfies EvalMetrics);
    return result;
  }

  /** Draws a text sample from the model and emits it; undefined for models that do not generate. */
  async sample(): Promise<string | undefined> {
    if (!this.o.sampler) return undefined;
    if (this.running) await this.running.catch(() => undefined);
    const text = await this.o.sampler(this.step);
    this.o.onEvent?.({ type: 'sample', step: this.step, text } satisfies SampleText);
    return text;
  }

  dispose(): void {
    this.o.backend.free(this.lossBuf);
    this.clipper?.dispose();
    this.eager?.dispose();
  }

  private async readStepLoss(k: number): Promise<number> {
    const rowsPerMicro = this.lossRows.slice(0, k); // copied now: the next step may change them
    const all = await this.o.backend.read(viewOf(this.lossBuf, 0, this.lossSlot * k));
    let sum = 0;
    let count = 0;
    rowsPerMicro.forEach((rows, m) => {
      for (let i = 0; i < rows; i++) sum += all[m * this.lossSlot + i];
      count += rows;
    });
    // NaN on a zero-share step: the tab trained on no samples (the room's loss leaves it out, replica-check.ts).
    return sum / count;
  }
}
