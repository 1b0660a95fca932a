// The run loop's memory budget (budget=, MiB per tab, for device memory and for host memory each):
// refuse before the first step a run that will not fit, saying whether ZeRO-3 would, check the real
// allocations after the first step, and say whether the whole vector may be gathered once it ends.
import type { Backend } from '../engine/backend';
import type { Gpt } from '../model/gpt';
import type { Mlp } from '../model/mlp';
import { budgetRefusal, predictBytes, predictHostBytes, totalBytes } from '../parallel/zero/budget';
import type { Run } from '../train/recipes';
import type { LabConfig } from './config';

/** Before the first step: throws when the run's predicted device or host memory is over the budget. */
export function checkBudgetBeforeTraining(config: LabConfig, run: Run<Mlp> | Run<Gpt>, backend: Backend, world: number, elastic: boolean): void {
  if (!(config.budget > 0)) return;
  const memory = backend.memory();
  // Groups resident at once under ZeRO: the GPT's tied head needs the embedding beside the final norm.
  const residentGroups = run.model.kind === 'gpt' ? 2 : 1;
  const eagerSnapshot = run.trainer.eagerSnapshotBytes;
  const optimizerFloats = run.optimizer.stateBuffers().length;
  const device = (stage: number) => predictBytes(run.model.layout, world, stage, memory, config.zero, { offload: config.offload, residentGroups, eagerSnapshot, optimizerFloats });
  const host = (stage: number) => predictHostBytes(run.model.layout, world, stage, { optimizerFloats, elastic });
  // ZeRO-3's advice counts the larger of its device and host memory: both must fit.
  const three = config.zero < 3 ? Math.max(device(3), host(3)) : null;
  const refusal = budgetRefusal(config.budget, device(config.zero), config.zero, three) ?? budgetRefusal(config.budget, host(config.zero), config.zero, three, 'host');
  if (refusal) throw new Error(refusal);
}

/** After the first step (ZeRO has lent its layer slots back): throws when what is allocated, on the device or the host, is over the budget. */
export function checkBudgetAfterFirstStep(config: LabConfig, backend: Backend, hostBytes: number): void {
  const refusal = budgetRefusal(config.budget, totalBytes(backend.memory()), config.zero, null) ?? budgetRefusal(config.budget, hostBytes, config.zero, null, 'host');
  if (refusal) throw new Error(refusal);
}

/**
 * Whether a run that holds a part of the parameters (ZeRO-3) may gather the whole vector on the host
 * once it has ended: always without a budget, else when the predicted host memory plus the vector fit.
 * Every rank computes the same answer (a prediction from the layout), so all or none join the gather.
 */
export function wholeVectorFits(config: LabConfig, run: Run<Mlp> | Run<Gpt>, world: number, elastic: boolean): boolean {
  if (!(config.budget > 0)) return true;
  const host = predictHostBytes(run.model.layout, world, config.zero, { optimizerFloats: run.optimizer.stateBuffers().length, elastic });
  return host + 4 * run.model.layout.totalLength <= config.budget * (1 << 20);
}
