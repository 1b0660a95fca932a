// The run loop's memory budget (budget=, MiB per tab): refuse before the first step a run that will
// not fit, saying whether ZeRO-3 would, and check the real allocations after the first step.
import type { Backend } from '../engine/backend';
import type { Gpt } from '../model/gpt';
import type { Mlp } from '../model/mlp';
import { budgetRefusal, predictBytes, totalBytes } from '../parallel/zero/budget';
import type { Run } from '../train/recipes';
import type { LabConfig } from './config';

/** Before the first step: throws when the run's predicted memory is over the budget. */
export function checkBudgetBeforeTraining(config: LabConfig, run: Run<Mlp> | Run<Gpt>, backend: Backend, world: number): void {
  if (!(config.budget > 0)) return;
  const memory = backend.memory();
  // Groups resident at once under ZeRO: the GPT's tied head needs the embedding beside the final norm.
  const residentGroups = run.model.kind === 'gpt' ? 2 : 1;
  const eagerSnapshot = run.trainer.eagerSnapshotBytes;
  const predict = (stage: number) => predictBytes(run.model.layout, world, stage, memory, config.zero, { offload: config.offload, residentGroups, eagerSnapshot });
  const refusal = budgetRefusal(config.budget, predict(config.zero), config.zero, config.zero < 3 ? predict(3) : null);
  if (refusal) throw new Error(refusal);
}

/** After the first step (ZeRO has lent its layer slots back): throws when what is allocated is over the budget. */
export function checkBudgetAfterFirstStep(config: LabConfig, backend: Backend): void {
  const refusal = budgetRefusal(config.budget, totalBytes(backend.memory()), config.zero, null);
  if (refusal) throw new Error(refusal);
}
