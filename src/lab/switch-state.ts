// What a run's state becomes when the room switches strategy (strategy-switch.ts), stated once:
//
// - parameters and the step count carry over unchanged: a switch happens where the old strategy's
//   replicas are equal (every step; under DiLoCo after an outer step), so every tab starts the new
//   strategy from the same parameters;
// - the optimizer state (AdamW's moments, SGD's momentum) carries over where it is a replica's: from the
//   ring, dense or compressed, it is equal on every tab already. Leaving DiLoCo, each tab's inner
//   optimizer has seen only its own shard: the room averages it (one all-reduce, the same bits on every
//   tab). Leaving the synchronous parameter server, only the server (rank 0) holds it: the others
//   contribute zeros to a sum, which hands everyone the server's state exactly. A new strategy that
//   keeps no state on some tabs (the server) keeps the part it holds;
// - state of the old strategy's own is dropped and the new one starts fresh: Top-K / Random-K's error
//   feedback (what was not sent yet), PowerSGD's residual and warm-started Q, DiLoCo's anchor and outer
//   momentum. A buffer the new optimizer names differently (momentum correction moving SGD's momentum
//   into the sparsifier) starts at zero.
import { runAllReduce } from '../collective/collectives';
import { COLLECTIVE_IDS } from '../collective/collective-ids';
import type { Transport } from '../collective/types';
import { viewOf, type Backend } from '../engine/backend';
import type { FlatRange } from '../model/layout';
import type { Optimizer } from '../train/optimizer';
import type { Trainer } from '../train/trainer';
import type { StrategySettings } from './strategy-switch';

/** The parts of a run a switch carries (train/recipes.ts Run). */
export interface SwitchableRun {
  model: { params: Parameters<typeof viewOf>[0] };
  optimizer: Pick<Optimizer, 'backend' | 'stateRange' | 'stateBuffers'>;
  trainer: Pick<Trainer, 'step'>;
}

/** A run's state, read back to the host. */
export interface HeldRunState {
  params: Float32Array;
  state: Map<string, { range: FlatRange; values: Float32Array }>;
  step: number;
}

export async function takeRunState(backend: Backend, run: SwitchableRun): Promise<HeldRunState> {
  const params = await backend.read(viewOf(run.model.params));
  const state = new Map<string, { range: FlatRange; values: Float32Array }>();
  for (const { name, buf } of run.optimizer.stateBuffers()) state.set(name, { range: { ...run.optimizer.stateRange }, values: await run.optimizer.backend.read(viewOf(buf)) });
  return { params, state, step: run.trainer.step };
}

/** How the optimizer state is made one again after leaving `before`: averaged, the server's, or nothing to do. */
export function stateHarmony(before: StrategySettings, after: StrategySettings): 'average' | 'server' | 'none' {
  // A new parameter server keeps the state on its server only: nothing of the others' is used.
  if (after.mode === 'ps') return 'none';
  if (before.mode === 'diloco') return 'average';
  if (before.mode === 'ps') return 'server';
  return 'none';
}

/**
 * Writes `held` into the run built for the new strategy and, in a room, makes its optimizer state one
 * again (stateHarmony). Returns the names of buffers that started at zero. All ranks call it at the
 * same step: the all-reduce is a collective.
 */
export async function carryRunState(
  backend: Backend,
  run: SwitchableRun,
  held: HeldRunState,
  o: { before: StrategySettings; after: StrategySettings; transport: Transport | undefined; round: number },
): Promise<string[]> {
  backend.write(viewOf(run.model.params), held.params);
  const zeroed: string[] = [];
  const buffers = run.optimizer.stateBuffers();
  const range = run.optimizer.stateRange;
  const fresh = buffers.map(({ name, buf }) => {
    const old = held.state.get(name);
    const values = new Float32Array(buf.length);
    if (old && old.range.offset <= range.offset && range.offset + range.length <= old.range.offset + old.range.length) {
      const at = range.offset - old.range.offset;
      values.set(old.values.subarray(at, at + range.length));
    } else {
      zeroed.push(name);
    }
    return values;
  });
  const harmony = stateHarmony(o.before, o.after);
  if (o.transport && o.transport.world > 1 && harmony !== 'none' && fresh.length > 0) {
    // One all-reduce of every buffer end to end; leaving the server, the others' zeros make the sum its state.
    const total = fresh.reduce((n, f) => n + f.length, 0);
    const joined = new Float32Array(total);
    let at = 0;
    for (const f of fresh) {
      if (harmony === 'server' && o.transport.rank !== 0) f.fill(0);
      joined.set(f, at);
      at += f.length;
    }
    await runAllReduce(o.transport, joined, { round: o.round, collective: COLLECTIVE_IDS.strategyState.first, average: harmony === 'average' });
    at = 0;
    for (const f of fresh) {
      f.set(joined.subarray(at, at + f.length));
      at += f.length;
    }
  }
  buffers.forEach(({ buf }, i) => run.optimizer.backend.write(viewOf(buf), fresh[i]));
  run.trainer.step = held.step;
  return harmony === 'server' ? [] : zeroed;
}
