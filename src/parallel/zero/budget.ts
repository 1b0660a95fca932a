// The per-tab memory budget (config `budget`, MiB): a run whose tab would hold more device memory than
// that is refused with the figures, and a plain data-parallel run that does not fit is told whether
// ZeRO-3 would. Predictions use the same partition as the run; the check after the first step uses the
// backend's real allocations.
import type { MemoryKind } from '../../engine/backend';
import type { ParamLayout } from '../../model/layout';
import { zeroPartition } from './zero-hooks';

const MiB = 1 << 20;

export function totalBytes(memory: Record<MemoryKind, number>): number {
  return Object.values(memory).reduce((a, b) => a + b, 0);
}

/**
 * Bytes a tab would hold under `stage`, from what it holds now under `current` (activations, data and
 * other workspace stay): parameters, gradients and optimizer state of the largest shard, plus the
 * layer slots ZeRO lends (stage 3: a parameter and a gradient slot per resident group; stage 2: gradient
 * slots) and the staging buffer.
 */
export function predictBytes(
  layout: ParamLayout,
  world: number,
  stage: number,
  current: Record<MemoryKind, number>,
  currentStage: number,
  opts: { optimizerFloats?: number; offload?: boolean; residentGroups?: number } = {},
): number {
  const { optimizerFloats = 2, offload = false, residentGroups = 2 } = opts;
  const P = layout.totalLength;
  const shard = Math.max(...zeroPartition(layout, world).shards.map((s) => s.length));
  const maxGroup = Math.max(...layout.groups.map((g) => g.range.length));
  const held = (s: number) => {
    const params = s >= 3 ? shard : P;
    const grads = s >= 2 ? shard : P;
    const optimizer = offload && s >= 1 ? 0 : optimizerFloats * (s >= 1 ? shard : P);
    // Parameter and gradient slots for the groups resident at once (the GPT's tied head: two), plus
    // the staging buffer reduced gradients pass through.
    const slots = s >= 3 ? 2 * residentGroups * maxGroup + maxGroup : s === 2 ? residentGroups * maxGroup + maxGroup : 0;
    return 4 * (params + grads + optimizer + slots);
  };
  const rest = totalBytes(current) - current.params - current.grads - current.optimizer;
  const currentSlots = held(currentStage) - 4 * (currentStage >= 3 ? shard : P) - 4 * (currentStage >= 2 ? shard : P) - 4 * (offload && currentStage >= 1 ? 0 : optimizerFloats * (currentStage >= 1 ? shard : P));
  return Math.max(0, rest - currentSlots) + held(stage);
}

/** null when `bytes` fits under `budgetMiB`; otherwise the reason to refuse, with figures and advice. */
export function budgetRefusal(budgetMiB: number, bytes: number, stage: number, stage3Bytes: number | null): string | null {
  if (!(budgetMiB > 0) || bytes <= budgetMiB * MiB) return null;
  const need = (bytes / MiB).toFixed(2);
  const mode = stage === 0 ? 'plain data parallelism' : `ZeRO-${stage}`;
  let advice = '';
  if (stage < 3 && stage3Bytes !== null) {
    advice = stage3Bytes <= budgetMiB * MiB
      ? `; ZeRO-3 would hold about ${(stage3Bytes / MiB).toFixed(2)} MiB: set zero=3`
      : `; even ZeRO-3 would hold about ${(stage3Bytes / MiB).toFixed(2)} MiB: add tabs or shrink the model`;
  }
  return `memory budget exceeded: ${mode} holds ${need} MiB per tab, the budget is ${budgetMiB} MiB${advice}`;
}
