// Runs one stage's pipeline schedule (pipeline-schedules.ts) over a Transport: activations go forward to
// the next stage, activation gradients back to the previous one, one Float32 tensor per micro-batch and
// message. What a forward or backward computes is the caller's (StageCompute), so the same executor runs
// a model stage (src/parallel/pipeline-trainer.ts) and, in tests, compute with artificial delays.
//
// Every op emits one event with its start and end on this stage's clock: computes (busy time), sends
// (how long the hand-over took) and receives (how long the stage waited: idle time). The bubble and the
// per-stage busy and idle times are measured from these (pipeline-timeline.ts), never assumed.
import type { PipelineOp, PipelineOpKind, StageSchedule } from './pipeline-schedules';
import type { MessageTag, Transport } from './types';

/** A stage's computation, as the executor needs it. Arrays handed in are the executor's to forget. */
export interface StageCompute {
  /**
   * Forward of micro-batch `micro` from `input` (the previous stage's output; undefined on the first
   * stage). Resolves, once computed, with the activation to send on (undefined on the last stage).
   */
  forward(micro: number, input: Float32Array | undefined): Promise<Float32Array | undefined>;
  /**
   * Backward of micro-batch `micro` from `outputGrad` (undefined on the last stage). Resolves, once
   * computed, with the gradient of the stage's input to send back (undefined on the first stage).
   */
  backward(micro: number, outputGrad: Float32Array | undefined): Promise<Float32Array | undefined>;
}

export interface PipelineEvent {
  type: 'pipeline';
  kind: PipelineOpKind;
  /** The stage that ran the op. */
  stage: number;
  micro: number;
  /** The stage sent to or received from (messages only). */
  peer?: number;
  /** Payload bytes (messages only). */
  bytes?: number;
  /** The optimizer step (MessageTag.round). */
  round: number;
  tStart: number;
  tEnd: number;
}

export type PipelineListener = (event: PipelineEvent) => void;

export interface StageRunOptions {
  transport: Transport;
  /** The optimizer step: messages of different steps never match. */
  round: number;
  /** Collective number within the round (MessageTag.collective) of this pipeline's messages. Default 0. */
  collective?: number;
  /** Transport rank of each stage (a DP x PP room numbers its tabs otherwise). Default: rank = stage. */
  rankOfStage?: (stage: number) => number;
  onEvent?: PipelineListener;
  /** The clock events are stamped with (default performance.now). */
  now?: () => number;
  /** Awaited before op `index` of the list starts (the classroom holds each op until it is released). */
  beforeOp?: (op: PipelineOp, index: number) => Promise<void>;
}

/** Message number of micro-batch `micro`'s activation (even) or activation gradient (odd). */
export function pipelineTag(round: number, collective: number, micro: number, kind: 'activation' | 'grad'): MessageTag {
  return { round, collective, chunk: micro * 2 + (kind === 'grad' ? 1 : 0) };
}

function bytesOf(data: Float32Array): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

function floatsOf(payload: Uint8Array, what: string): Float32Array {
  if (payload.byteLength % 4 !== 0) throw new RangeError(`${what}: ${payload.byteLength} bytes is not a whole number of float32 values`);
  // Float32Array needs 4-byte alignment; a payload cut out of a larger frame may not have it.
  const aligned = payload.byteOffset % 4 === 0 ? payload : payload.slice();
  return new Float32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 4);
}

/**
 * Runs `schedule`'s ops in order; resolves when the last is done with this stage's events. Rejects on
 * the first failure (a lost peer, a compute error) and runs nothing after it.
 */
export async function runStageSchedule(schedule: StageSchedule, compute: StageCompute, options: StageRunOptions): Promise<PipelineEvent[]> {
  const { transport, round } = options;
  const collective = options.collective ?? 0;
  const rankOf = options.rankOfStage ?? ((stage: number) => stage);
  const now = options.now ?? (() => performance.now());
  const events: PipelineEvent[] = [];
  /** Per micro-batch: the input received, the output to send, the gradient received, the one to send. */
  const inputs = new Map<number, Float32Array>();
  const outputs = new Map<number, Float32Array>();
  const outputGrads = new Map<number, Float32Array>();
  const inputGrads = new Map<number, Float32Array>();
  const take = <T>(map: Map<number, T>, micro: number, what: string): T => {
    const value = map.get(micro);
    if (value === undefined) throw new Error(`stage ${schedule.stage}: no ${what} of micro-batch ${micro} (the schedule is out of order)`);
    map.delete(micro);
    return value;
  };
  for (const [index, op] of schedule.ops.entries()) {
    await options.beforeOp?.(op, index);
    const tStart = now();
    let bytes: number | undefined;
    const peer = op.peer;
    switch (op.kind) {
      case 'forward': {
        const out = await compute.forward(op.micro, schedule.stage > 0 ? take(inputs, op.micro, 'input activation') : undefined);
        if (out) outputs.set(op.micro, out);
        break;
      }
      case 'backward': {
        const grad = await compute.backward(op.micro, schedule.stage < schedule.stages - 1 ? take(outputGrads, op.micro, 'output gradient') : undefined);
        if (grad) inputGrads.set(op.micro, grad);
        break;
      }
      case 'send-activation':
      case 'send-grad': {
        const grad = op.kind === 'send-grad';
        const data = take(grad ? inputGrads : outputs, op.micro, grad ? 'input gradient' : 'output activation');
        bytes = data.byteLength;
        await transport.send(rankOf(peer ?? -1), pipelineTag(round, collective, op.micro, grad ? 'grad' : 'activation'), bytesOf(data));
        break;
      }
      case 'recv-activation':
      case 'recv-grad': {
        const grad = op.kind === 'recv-grad';
        const payload = await transport.recv(rankOf(peer ?? -1), pipelineTag(round, collective, op.micro, grad ? 'grad' : 'activation'));
        bytes = payload.byteLength;
        (grad ? outputGrads : inputs).set(op.micro, floatsOf(payload, `${op.kind} of micro-batch ${op.micro} from stage ${peer}`));
        break;
      }
    }
    const event: PipelineEvent = {
      type: 'pipeline',
      kind: op.kind,
      stage: schedule.stage,
      micro: op.micro,
      ...(peer !== undefined ? { peer } : {}),
      ...(bytes !== undefined ? { bytes } : {}),
      round,
      tStart,
      tEnd: now(),
    };
    events.push(event);
    options.onEvent?.(event);
  }
  return events;
}
