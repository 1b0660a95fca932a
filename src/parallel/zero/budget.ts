// The per-tab memory budget (config `budget`, MiB), applied to device memory and to host memory each:
// a run whose tab would hold more of either than that is refused with the figures, and a plain data-parallel run that does not fit is told whether
// ZeRO-3 would. Predictions use the same partition as the run; the check after the first step uses the
// backend's real allocations.
import type { MemoryKind } from '../../engine/backend';
import type { ParamLayout } from '../../model/layout';
import { largestGroup } from './shard-storage';
import { zeroPartition } from './zero-hooks';
import { zeroStagingFloats } from './zero-sync';

const MiB = 1 << 20;

export function totalBytes(memory: Record<MemoryKind, number>): number {
  return Object.values(memory).reduce((a, b) => a + b, 0);
}

/**
 * Layer-sized slots a rank holds at once under `stage`. Stage 3: one when a single group is resident
 * at a time (the MLP: its weights' slot is handed to its gradients), else a parameter and a gradient
 * slot per resident group (the GPT: two groups around its tied head). Stage 2: gradient slots only.
 */
export function slotsHeld(stage: number, residentGroups: number): number {
  if (stage >= 3) return residentGroups === 1 ? 1 : 2 * residentGroups;
  return stage === 2 ? residentGroups : 0;
}

/**
 * Bytes a tab would hold under `stage` once training, from `current`, what it holds before its first
 * step (activations, data and the trainer's workspace stay; ZeRO lends its slots only during steps, so
 * none are held yet whatever the current stage): parameters, gradients and optimizer state of the
 * largest shard, plus the layer slots ZeRO lends and the staging buffer reduced gradients pass through.
 */
export function predictBytes(
  layout: ParamLayout,
  world: number,
  stage: number,
  current: Record<MemoryKind, number>,
  /** The stage `current` was measured under: its sharded kinds are measured, so it changes nothing. */
  _currentStage: number,
  opts: {
    optimizerFloats?: number;
    offload?: boolean;
    residentGroups?: number;
    /**
     * Bytes of `current.workspace` that plain data parallelism keeps to roll back eager updates (the
     * trainer's eagerSnapshotBytes): held at stage 0 only, since ZeRO updates after the sync.
     */
    eagerSnapshot?: number;
  } = {},
): number {
  const { optimizerFloats = 2, offload = false, residentGroups = 2, eagerSnapshot = 0 } = opts;
  const P = layout.totalLength;
  const shard = Math.max(...zeroPartition(layout, world).shards.map((s) => s.length));
  const sharded = (s: number) => {
    const params = s >= 3 ? shard : P;
    const grads = s >= 2 ? shard : P;
    const optimizer = offload && s >= 1 ? 0 : optimizerFloats * (s >= 1 ? shard : P);
    return 4 * (params + grads + optimizer);
  };
  const lent = (s: number) => 4 * (slotsHeld(s, residentGroups) * largestGroup(layout) + (s >= 2 ? zeroStagingFloats(layout, s) : 0));
  // What stays whatever the stage: activations, data, the trainer's workspace.
  const rest = totalBytes(current) - current.params - current.grads - current.optimizer - eagerSnapshot;
  return rest + sharded(stage) + lent(stage) + (stage === 0 ? eagerSnapshot : 0);
}

/**
 * Host bytes a tab holds under `stage` while training: the largest host array ZeRO's collectives use
 * (stage 3: one layer group; stages 1-2: the whole vector the parameters are all-gathered into) and, in
 * an elastic room, the backups (zero-backup.ts: its own and its predecessor's slice, two generations:
 * 4 slices of the largest shard's parameters and optimizer state).
 */
export function predictHostBytes(layout: ParamLayout, world: number, stage: number, opts: { optimizerFloats?: number; elastic?: boolean } = {}): number {
  const { optimizerFloats = 2, elastic = false } = opts;
  if (stage === 0) return 0;
  const shard = Math.max(...zeroPartition(layout, world).shards.map((s) => s.length));
  const staging = stage >= 3 ? largestGroup(layout) : layout.totalLength;
  const backups = elastic && world > 1 ? 4 * shard * (1 + optimizerFloats) : 0;
  return 4 * (staging + backups);
}

/** null when `bytes` fits under `budgetMiB`; otherwise the reason to refuse, with figures and advice. */
export function budgetRefusal(budgetMiB: number, bytes: number, stage: number, stage3Bytes: number | null, memory: 'device' | 'host' = 'device'): string | null {
  if (!(budgetMiB > 0) || bytes <= budgetMiB * MiB) return null;
  const need = (bytes / MiB).toFixed(2);
  const mode = (stage === 0 ? 'plain data parallelism' : `ZeRO-${stage}`) + (memory === 'host' ? ' holds in host memory' : ' holds');
  let advice = '';
  if (stage < 3 && stage3Bytes !== null) {
    advice = stage3Bytes <= budgetMiB * MiB
      ? `; ZeRO-3 would hold about ${(stage3Bytes / MiB).toFixed(2)} MiB: set zero=3`
      : `; even ZeRO-3 would hold about ${(stage3Bytes / MiB).toFixed(2)} MiB: add tabs or shrink the model`;
  }
  return `memory budget exceeded: ${mode} ${need} MiB per tab, the budget is ${budgetMiB} MiB${advice}`;
}
