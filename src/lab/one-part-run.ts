// What a partitioned run kind (partitioned-run.ts) whose tab holds one model part in one parameter
// buffer, with one optimizer and one trainer, does like every other such kind: the step is the
// trainer's, the part's parameters are read from that buffer, the checkpoint and its restore carry
// the part with the partition recorded (part-checkpoint.ts), and dispose frees the optimizer and the
// model. The tensor and expert kinds (tensor-run.ts, expert-run.ts) extend it and say only what is
// theirs: which part they hold (`heldPart`) and where it sits in the partition (`partition`).
import type { Transport } from '../collective/types';
import { runAllReduce } from '../collective/collectives';
import { viewOf } from '../engine/backend';
import type { CheckpointableRun } from '../train/checkpoint';
import type { TrainingRecipe } from '../train/defaults';
import type { PartitionedBuildContext } from './partitioned-run';
import { capturePart, type PartitionRecord, restorePart } from './part-checkpoint';

export abstract class OnePartRun {
  abstract readonly recipe: TrainingRecipe;

  protected constructor(protected readonly context: PartitionedBuildContext) {}

  /** This tab's model part, its optimizer and its trainer (read after the subclass's constructor has built them). */
  protected abstract heldPart(): CheckpointableRun;

  /** Where this tab's part sits: recorded in its checkpoint, which refuses to restore another part. */
  protected abstract partition(): PartitionRecord;

  get step(): number {
    return this.heldPart().trainer.step;
  }
  set step(value: number) {
    this.heldPart().trainer.step = value;
  }

  partParams(): Promise<Float32Array> {
    return this.context.backend.read(viewOf(this.heldPart().model.params));
  }

  checkpoint(meta: { world: number; rank: number; vocab: string[] | null }): Promise<Uint8Array> {
    return capturePart(this.context.backend, this.heldPart(), { config: this.context.config, recipe: this.recipe, partition: this.partition() }, meta);
  }

  restore(bytes: Uint8Array, world: number): string[] {
    return restorePart(this.context.backend, this.heldPart(), bytes, { recipe: this.recipe, partition: this.partition(), world });
  }

  dispose(): void {
    const { optimizer, model } = this.heldPart();
    optimizer.dispose();
    model.dispose();
  }
}

/**
 * The mean of every tab's `loss` over `group` (every tab gets the same bits); a group of one keeps its
 * own. The room's training loss when each tab of `group` holds the loss of an equal share of the batch.
 */
export async function meanOverGroup(group: Transport, loss: number, options: { round: number; collective: number }): Promise<number> {
  if (group.world === 1) return loss;
  const values = new Float32Array([loss]);
  await runAllReduce(group, values, { ...options, average: true });
  return values[0];
}
