// Runs one stage's pipeline schedule (pipeline-schedules.ts) over a Transport: activations go forward to
// the next stage, activation gradients back to the previous one, one Float32 tensor per micro-batch and
// message. What a forward or backward computes is the caller's (StageCompute), so the same executor runs
// a model stage (src/parallel/pipeline-trainer.ts) and, in tests, compute with artificial delays.
//
// The list's order is the order ops start in, but a stage does not stand still for what it need not
// wait for: every receive is posted when the step starts (a message that arrives early is taken as it
// comes), a send is handed to the transport and the next op starts at once (the step ends only when
// every send has gone), and a compute may hand back its output still on its way from the device
// (`{ pending }`): the next op is submitted while the read-back runs, and the send waits for it. Only
// a receive, and a compute that needs the tensor a receive brings, make the stage wait. With `beforeOp`
// (the classroom, one op at a time) every op completes before the next starts.
//
// With `ahead` > 0 a stage may also run a forward before the list says: at a gradient receive whose
// message has not come, the next forward runs first when its input is here, while the stage holds at
// most `ahead` activation sets more than the list does. Backwards never move (the gradient sums in the
// list's order: same bits), and a forward moved earlier only sends its message earlier, so a list that
// runs to its end with blocking receives (checkPipeline) still does: nothing waits for more than it
// did.
//
// Every op emits one event with its start and end on this stage's clock: computes from the start of
// their submission to their output's arrival (busy time; two may overlap while the device works
// through its queue), sends from the hand-over to the transport's completion, receives from the op's
// turn to the message's arrival (the time the stage waited: idle). Events are emitted as ops finish,
// so a send's or a pending compute's event may come after a later op's. The bubble and the per-stage
// busy and idle times are measured from these (pipeline-timeline.ts), never assumed.
import { peakInFlight, type PipelineOp, type PipelineOpKind, type StageSchedule } from './pipeline-schedules';
import type { MessageTag, Transport } from './types';

/**
 * What a forward or backward hands back: the tensor to send on (undefined: nothing to send), or, when
 * the op was only submitted to the device, `{ pending }`, a promise of that tensor which settles once
 * the op's work has finished (its read-back arrived). The op's event ends when it settles.
 */
export type StageOutput = Float32Array | undefined | { pending: Promise<Float32Array | undefined> };

/** A stage's computation, as the executor needs it. Arrays handed in are the executor's to forget. */
export interface StageCompute {
  /**
   * Forward of micro-batch `micro` from `input` (the previous stage's output; undefined on the first
   * stage). Resolves with the activation to send on (undefined on the last stage), or its promise.
   */
  forward(micro: number, input: Float32Array | undefined): Promise<StageOutput>;
  /**
   * Backward of micro-batch `micro` from `outputGrad` (undefined on the last stage). Resolves with the
   * gradient of the stage's input to send back (undefined on the first stage), or its promise.
   */
  backward(micro: number, outputGrad: Float32Array | undefined): Promise<StageOutput>;
}

/**
 * What an event reports: one op of the schedule, or (DP x PP, pipeline-trainer.ts) one layer group's
 * gradient all-reduce over the stage's replicas, which runs beside the schedule, not in it.
 */
export type PipelineEventKind = PipelineOpKind | 'allreduce';

export interface PipelineEvent {
  type: 'pipeline';
  kind: PipelineEventKind;
  /** The stage that ran the op. */
  stage: number;
  /** The micro-batch; of an 'allreduce', the index of its layer group in the stage's layout. */
  micro: number;
  /** Of an 'allreduce': the layer group's name. */
  group?: string;
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
  /**
   * Forwards a stage may run ahead of its list (default 0: none): at a gradient receive whose message
   * has not come, the stage runs its next forward first if that forward's input is here, holding at
   * most `ahead` activation sets more than the list does. A 1F1B stage then does not stand idle while a
   * message is on its way (the hand-over time would otherwise sit in every steady-state op pair);
   * GPipe has no forward after a gradient receive, so it is unchanged. Ignored with `beforeOp`.
   */
  ahead?: number;
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

function isPending(output: StageOutput): output is { pending: Promise<Float32Array | undefined> } {
  return output !== undefined && !(output instanceof Float32Array);
}

/**
 * Runs `schedule`'s ops, starting them in order; resolves with this stage's events once every op has
 * finished (every send gone, every pending output arrived). Rejects on the first failure (a lost peer,
 * a compute or send error) and starts nothing after it.
 */
export async function runStageSchedule(schedule: StageSchedule, compute: StageCompute, options: StageRunOptions): Promise<PipelineEvent[]> {
  const { transport, round } = options;
  const collective = options.collective ?? 0;
  const rankOf = options.rankOfStage ?? ((stage: number) => stage);
  const now = options.now ?? (() => performance.now());
  const oneAtATime = options.beforeOp !== undefined;
  const events: PipelineEvent[] = [];
  const emit = (op: PipelineOp, tStart: number, bytes?: number): void => {
    const event: PipelineEvent = {
      type: 'pipeline',
      kind: op.kind,
      stage: schedule.stage,
      micro: op.micro,
      ...(op.peer !== undefined ? { peer: op.peer } : {}),
      ...(bytes !== undefined ? { bytes } : {}),
      round,
      tStart,
      tEnd: now(),
    };
    events.push(event);
    options.onEvent?.(event);
  };
  // Work that runs on while later ops start (sends, pending outputs): the first failure among it
  // fails the step at the next op, and the step waits for all of it before it resolves.
  const failure: { error?: unknown; happened: boolean } = { happened: false };
  let failed!: (error: unknown) => void;
  const failedSignal = new Promise<never>((_, reject) => (failed = reject));
  failedSignal.catch(() => undefined);
  const background: Promise<void>[] = [];
  const inBackground = (work: Promise<void>): void => {
    background.push(
      work.catch((error: unknown) => {
        if (!failure.happened) Object.assign(failure, { happened: true, error });
        failed(error);
      }),
    );
  };
  /** Awaits `work`, or the first background failure if that comes first. */
  const unlessFailed = <T>(work: Promise<T>): Promise<T> => Promise.race([work, failedSignal]);
  const tagOf = (op: PipelineOp) => pipelineTag(round, collective, op.micro, op.kind.endsWith('grad') ? 'grad' : 'activation');
  // Every receive posted now: a message is taken when it arrives, whatever op the stage is on. One op
  // at a time (the classroom, paced by a person) posts each at its turn instead, so that a transport's
  // receive deadline counts from then.
  const posted = new Map<string, Promise<Uint8Array>>();
  /** Receives whose message is here (their promise resolved). */
  const arrived = new Set<string>();
  const receiveKey = (op: PipelineOp): string => `${op.kind}:${op.micro}`;
  const post = (op: PipelineOp): Promise<Uint8Array> => {
    const message = transport.recv(rankOf(op.peer ?? -1), tagOf(op));
    message.then(() => arrived.add(receiveKey(op))).catch(() => undefined); // awaited at its op; a step that fails before then leaves it
    return message;
  };
  if (!oneAtATime) for (const op of schedule.ops) if (op.kind === 'recv-activation' || op.kind === 'recv-grad') posted.set(receiveKey(op), post(op));
  // Forwards run ahead of the list only beside receives posted early (not one op at a time), up to
  // `ahead` activation sets more than the list itself holds at most.
  const cap = !oneAtATime && (options.ahead ?? 0) > 0 ? peakInFlight(schedule) + (options.ahead ?? 0) : 0;
  let inFlight = 0;
  /** Per micro-batch: the input received, the output to send, the gradient received, the one to send. */
  const inputs = new Map<number, Float32Array>();
  const outputs = new Map<number, Promise<Float32Array | undefined>>();
  const outputGrads = new Map<number, Float32Array>();
  const inputGrads = new Map<number, Promise<Float32Array | undefined>>();
  const take = <T>(map: Map<number, T>, micro: number, what: string): T => {
    const value = map.get(micro);
    if (value === undefined) throw new Error(`stage ${schedule.stage}: no ${what} of micro-batch ${micro} (the schedule is out of order)`);
    map.delete(micro);
    return value;
  };
  /** A compute's output: now, or (pending) when its read-back arrives; its event ends then. */
  const computed = (op: PipelineOp, tStart: number, output: StageOutput, into: Map<number, Promise<Float32Array | undefined>>): Promise<void> | undefined => {
    if (!isPending(output)) {
      if (output) into.set(op.micro, Promise.resolve(output));
      emit(op, tStart);
      return undefined;
    }
    const arrived = output.pending.then((value) => {
      emit(op, tStart);
      return value;
    });
    arrived.catch(() => undefined); // its failure is reported once, through `background`
    into.set(op.micro, arrived);
    const done = arrived.then(() => undefined);
    inBackground(done);
    return done;
  };
  /**
   * Runs op `index` of the list (a compute submits, a send is handed over, a receive takes its
   * message). `waitingSince`: a receive's wait began earlier (runForwardsAhead waited for it).
   */
  const runOp = async (index: number, waitingSince?: number): Promise<void> => {
    const op = schedule.ops[index];
    const tStart = waitingSince ?? now();
    const peer = op.peer;
    switch (op.kind) {
      case 'forward':
      case 'backward': {
        const forward = op.kind === 'forward';
        const given = forward
          ? schedule.stage > 0 ? take(inputs, op.micro, 'input activation') : undefined
          : schedule.stage < schedule.stages - 1 ? take(outputGrads, op.micro, 'output gradient') : undefined;
        inFlight += forward ? 1 : -1;
        const output = await unlessFailed(forward ? compute.forward(op.micro, given) : compute.backward(op.micro, given));
        const done = computed(op, tStart, output, forward ? outputs : inputGrads);
        if (done && oneAtATime) await unlessFailed(done);
        break;
      }
      case 'send-activation':
      case 'send-grad': {
        const grad = op.kind === 'send-grad';
        const data = take(grad ? inputGrads : outputs, op.micro, grad ? 'input gradient' : 'output activation');
        const sent = data.then(async (tensor) => {
          if (!tensor) throw new Error(`stage ${schedule.stage}: the ${grad ? 'backward' : 'forward'} of micro-batch ${op.micro} gave nothing to send`);
          await transport.send(rankOf(peer ?? -1), tagOf(op), bytesOf(tensor));
          emit(op, tStart, tensor.byteLength);
        });
        if (oneAtATime) await unlessFailed(sent);
        else inBackground(sent);
        break;
      }
      case 'recv-activation':
      case 'recv-grad': {
        const grad = op.kind === 'recv-grad';
        const payload = await unlessFailed(posted.get(receiveKey(op)) ?? post(op));
        (grad ? outputGrads : inputs).set(op.micro, floatsOf(payload, `${op.kind} of micro-batch ${op.micro} from stage ${peer}`));
        emit(op, tStart, payload.byteLength);
        break;
      }
    }
  };
  /** Ops already run ahead of their turn (runForwardAhead), skipped when the list reaches them. */
  const ranAhead = new Set<number>();
  /**
   * The ops of the first forward after list position `from` not yet run: its receive (none on the
   * first stage), the forward and its send (none on the last stage), as list indices.
   */
  const nextForward = (from: number): number[] | undefined => {
    const at = schedule.ops.findIndex((op, i) => i > from && op.kind === 'forward' && !ranAhead.has(i));
    if (at < 0) return undefined;
    const [before, after] = [schedule.ops[at - 1], schedule.ops[at + 1]];
    const micro = schedule.ops[at].micro;
    const receives = before?.kind === 'recv-activation' && before.micro === micro;
    const sends = after?.kind === 'send-activation' && after.micro === micro;
    // A list that does not keep a forward beside its receive and send is run in its own order.
    if (receives !== schedule.stage > 0 || sends !== schedule.stage < schedule.stages - 1) return undefined;
    return [...(receives ? [at - 1] : []), at, ...(sends ? [at + 1] : [])];
  };
  /**
   * At a gradient receive whose message is not here yet: while the stage holds fewer than `cap`
   * micro-batches, run the next forward now if its input is here (or comes before the gradient).
   * Returns when the gradient receive began to wait, if it did here.
   * Only forwards move, and only earlier: backwards keep the list's order (the gradient sums in the
   * same order, so the result is the same bits), and a forward run early only sends its message early.
   */
  const runForwardsAhead = async (index: number): Promise<number | undefined> => {
    const gradient = posted.get(receiveKey(schedule.ops[index]));
    if (!gradient) return undefined;
    while (!arrived.has(receiveKey(schedule.ops[index])) && inFlight < cap) {
      const ahead = nextForward(index);
      if (!ahead) return undefined;
      const receive = schedule.ops[ahead[0]];
      // Waiting for whichever message comes first is receive wait, whichever op it ends up in.
      let waitingSince: number | undefined;
      if (receive.kind === 'recv-activation' && !arrived.has(receiveKey(receive))) {
        waitingSince = now();
        const first = await unlessFailed(Promise.race([gradient.then(() => 'gradient'), posted.get(receiveKey(receive))!.then(() => 'activation')]));
        if (first === 'gradient') return waitingSince;
      }
      for (const [k, i] of ahead.entries()) {
        ranAhead.add(i);
        await runOp(i, k === 0 ? waitingSince : undefined);
      }
    }
    return undefined;
  };
  for (const index of schedule.ops.keys()) {
    if (failure.happened) throw failure.error;
    if (ranAhead.has(index)) continue;
    await options.beforeOp?.(schedule.ops[index], index);
    const waitingSince = cap > 0 && schedule.ops[index].kind === 'recv-grad' ? await runForwardsAhead(index) : undefined;
    await runOp(index, waitingSince);
  }
  await Promise.all(background);
  if (failure.happened) throw failure.error;
  return events;
}
