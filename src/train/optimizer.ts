// Optimizers over flat ranges of the parameter layout, so that ZeRO can give each rank the state of
// one slice only and update just that slice. Weight decay follows GPT-2 practice: matrices decay,
// biases and layer-norm parameters do not; the layout's contiguous runs with one decay flag become one
// optimizer dispatch each.
import { type Backend, type DeviceBuffer, viewOf, VIEW_ALIGNMENT } from '../engine/backend';
import type { FlatRange, ParamLayout } from '../model/layout';

export type OptimizerConfig =
  | { kind: 'sgd'; lr: number; momentum: number; weightDecay: number }
  | { kind: 'adamw'; lr: number; beta1: number; beta2: number; eps: number; weightDecay: number };

interface DecayRun extends FlatRange {
  decay: boolean;
}

/** Contiguous runs of the layout with one decay flag; padding joins the tensor before it. */
export function decayRuns(layout: ParamLayout): DecayRun[] {
  const runs: DecayRun[] = [];
  layout.entries.forEach((e, i) => {
    const end = i + 1 < layout.entries.length ? layout.entries[i + 1].offset : layout.totalLength;
    const last = runs[runs.length - 1];
    if (last && last.decay === e.decay) last.length = end - last.offset;
    else runs.push({ offset: e.offset, length: end - e.offset, decay: e.decay });
  });
  return runs;
}

function checkRange(range: FlatRange, within: FlatRange, what: string): void {
  if (range.offset % VIEW_ALIGNMENT !== 0) throw new RangeError(`${what} offset ${range.offset} is not a multiple of ${VIEW_ALIGNMENT}`);
  if (range.offset < within.offset || range.offset + range.length > within.offset + within.length) {
    throw new RangeError(`${what} [${range.offset}, ${range.offset + range.length}) outside [${within.offset}, ${within.offset + within.length})`);
  }
}

export class Optimizer {
  /** The part of the flat buffers whose state this optimizer holds (all of it unless ZeRO shards it). */
  readonly stateRange: FlatRange;
  private readonly state: DeviceBuffer[];
  private readonly runs: DecayRun[];
  private readonly layoutLength: number;

  constructor(
    /** Where the state lives: the device, or (ZeRO-Offload) the host's CPU backend. */
    readonly backend: Backend,
    layout: ParamLayout,
    readonly config: OptimizerConfig,
    stateRange: FlatRange = { offset: 0, length: layout.totalLength },
  ) {
    if (!(config.lr >= 0)) throw new RangeError(`learning rate must be >= 0, got ${config.lr}`);
    checkRange(stateRange, { offset: 0, length: layout.totalLength }, 'optimizer state range');
    if (stateRange.length <= 0) throw new RangeError('optimizer state range is empty');
    this.stateRange = { ...stateRange };
    this.layoutLength = layout.totalLength;
    this.runs = decayRuns(layout);
    const count = config.kind === 'adamw' ? 2 : 1;
    const names = config.kind === 'adamw' ? ['adam.m', 'adam.v'] : ['sgd.momentum'];
    this.state = Array.from({ length: count }, (_, i) => backend.alloc(stateRange.length, names[i], 'optimizer'));
    for (const buf of this.state) backend.fill(viewOf(buf), 0);
  }

  /**
   * One update of `params` from `grads` over `range` (default: the whole state range). `step` is the
   * 1-based optimizer step (Adam's bias correction); `lr` overrides the configured rate (schedules).
   */
  update(params: DeviceBuffer, grads: DeviceBuffer, step: number, lr = this.config.lr, range: FlatRange = this.stateRange): void {
    checkRange(range, this.stateRange, 'update range');
    if (!Number.isInteger(step) || step < 1) throw new RangeError(`optimizer step must be an integer >= 1, got ${step}`);
    const b = this.backend;
    const end = range.offset + range.length;
    // ZeRO-2/3 buffers hold the state range only: their element 0 is flat element stateRange.offset.
    const paramsOrigin = this.originOf(params, 'params');
    const gradsOrigin = this.originOf(grads, 'grads');
    for (const run of this.runs) {
      const lo = Math.max(run.offset, range.offset);
      const hi = Math.min(run.offset + run.length, end);
      if (hi <= lo) continue;
      const p = viewOf(params, lo - paramsOrigin, hi - lo);
      const g = viewOf(grads, lo - gradsOrigin, hi - lo);
      const s = (i: number) => viewOf(this.state[i], lo - this.stateRange.offset, hi - lo);
      const weightDecay = run.decay ? this.config.weightDecay : 0;
      if (this.config.kind === 'adamw') {
        const { beta1, beta2, eps } = this.config;
        b.adamw(p, g, s(0), s(1), { lr, beta1, beta2, eps, weightDecay, step });
      } else {
        b.sgd(p, g, s(0), { lr, momentum: this.config.momentum, weightDecay });
      }
    }
  }

  /**
   * The state buffers with their names (AdamW: adam.m, adam.v; SGD: sgd.momentum), each covering
   * `stateRange`. Checkpoints read and restore them; nothing else should write them.
   */
  stateBuffers(): readonly { name: string; buf: DeviceBuffer }[] {
    return this.state.map((buf) => ({ name: buf.label, buf }));
  }

  /** 0 for a full flat buffer; stateRange.offset for one that holds only the state range (a ZeRO shard). */
  private originOf(buf: DeviceBuffer, what: string): number {
    if (buf.length === this.layoutLength) return 0;
    if (buf.length === this.stateRange.length) return this.stateRange.offset;
    throw new RangeError(`${what} buffer holds ${buf.length} elements: neither the layout (${this.layoutLength}) nor the state range (${this.stateRange.length})`);
  }

  dispose(): void {
    for (const buf of this.state) this.backend.free(buf);
  }
}

/** Global gradient-norm clipping, all on the device: no readback unless the norm is asked for. */
export class GradClipper {
  private readonly sumSq: DeviceBuffer;

  constructor(private readonly backend: Backend) {
    this.sumSq = backend.alloc(VIEW_ALIGNMENT, 'clip.sumSq', 'workspace');
  }

  /** Scales `range` of `grads` so that its L2 norm is at most maxNorm. */
  clip(grads: DeviceBuffer, maxNorm: number, range: FlatRange = { offset: 0, length: grads.length }): void {
    if (!(maxNorm > 0)) throw new RangeError(`maxNorm must be > 0, got ${maxNorm}`);
    const g = viewOf(grads, range.offset, range.length);
    const s = viewOf(this.sumSq, 0, 1);
    this.backend.sumSquares(s, g);
    this.backend.clipByNorm(g, s, maxNorm);
  }

  /** The norm before the last clip (reads back: call only when it will be shown). */
  async lastNorm(): Promise<number> {
    const [sumSq] = await this.backend.read(viewOf(this.sumSq, 0, 1));
    return Math.sqrt(sumSq);
  }

  dispose(): void {
    this.backend.free(this.sumSq);
  }
}

export interface LrSchedule {
  lr: number;
  /** Linear warm-up steps from lr/warmup to lr. */
  warmupSteps: number;
  /** Total steps; after warm-up the rate follows a cosine down to lr * minFraction at totalSteps. */
  totalSteps: number;
  minFraction: number;
}

/** nanoGPT's get_lr: linear warm-up, then cosine decay to a floor. `step` is 0-based. */
export function learningRateAt(step: number, s: LrSchedule): number {
  if (step < s.warmupSteps) return (s.lr * (step + 1)) / s.warmupSteps;
  if (step >= s.totalSteps) return s.lr * s.minFraction;
  const progress = (step - s.warmupSteps) / Math.max(1, s.totalSteps - s.warmupSteps);
  const cosine = 0.5 * (1 + Math.cos(Math.PI * progress));
  return s.lr * (s.minFraction + (1 - s.minFraction) * cosine);
}
