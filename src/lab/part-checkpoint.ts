// A partitioned run's own part as a checkpoint file, and back (partitioned-run.ts checkpoint/restore):
// the part's parameters and optimizer state with the partition recorded in the header's lab settings,
// and a restore that refuses a file holding another part before it touches anything.
import type { Backend } from '../engine/backend';
import { captureCheckpoint, CheckpointError, loadCheckpoint, restoreCheckpoint, type CheckpointableRun } from '../train/checkpoint';
import type { TrainingRecipe } from '../train/defaults';
import type { LabConfig } from './config';

/** Where a tab's part sits in the partition: `{ kind: 'pipeline', stage, ... }`, `{ kind: 'tensor', rank, ... }`. */
export type PartitionRecord = { kind: string } & Record<string, string | number>;

export function capturePart(
  backend: Backend,
  run: CheckpointableRun,
  context: { config: LabConfig; recipe: TrainingRecipe; partition: PartitionRecord },
  meta: { world: number; rank: number; vocab: string[] | null },
): Promise<Uint8Array> {
  const { config, recipe, partition } = context;
  return captureCheckpoint(backend, run, {
    recipe,
    world: meta.world,
    rank: meta.rank,
    lab: { ...config, secret: undefined, resume: undefined, partition },
    ...(meta.vocab ? { vocab: meta.vocab } : {}),
    dataset: config.dataset,
  });
}

/** Restores `run` from its own part's file; throws, leaving the run as it was, when the file holds another part. Returns warnings. */
export function restorePart(
  backend: Backend,
  run: CheckpointableRun,
  bytes: Uint8Array,
  context: { recipe: TrainingRecipe; partition: PartitionRecord; world: number },
): string[] {
  const ckpt = loadCheckpoint(bytes);
  const saved = JSON.stringify(ckpt.header.lab?.partition ?? null);
  const here = JSON.stringify(context.partition);
  if (saved !== here) {
    throw new CheckpointError(`this checkpoint holds the part ${saved === 'null' ? `of a run without ${context.partition.kind} parallelism` : saved}; this tab is ${here}`);
  }
  return restoreCheckpoint(backend, run, ckpt, 'resume', { recipe: context.recipe, world: context.world });
}
