// One classroom tensor-parallel lesson on one rank: the textbook two-layer MLP Y = relu(X W1 + b1) W2 + b2
// split across the room's R tabs the Megatron way (W1 and b1 by columns, W2 by rows, b2 replicated;
// src/parallel/tensor-lesson.ts is the same example as data), forward and backward, one op per release
// of the teacher's tab. A local op runs on the one rank it belongs to (each rank's turn is its own
// step); the two all-reduces (Megatron's g of the partial outputs, f of the input gradient) run on
// every rank at once, as a real ring all-reduce over the room's transport. Each rank reports what it
// really computed; every tab shows those reports. The last step has every tab compute the unsplit
// layer itself and report how far its Y, dX and gradient shards are from it.
//
// The numbers are small integers (integerLessonValues, seeded by the lesson number), so float32 holds
// every one of them and the split result equals the unsplit one exactly.
import { runAllReduce } from '../collective/collectives';
import {
  addRow,
  columns,
  integerLessonValues,
  map2,
  matmul,
  maxAbsDifference,
  relu,
  rowsOf,
  sumRows,
  transpose,
  type LessonShape,
  type LessonValues,
  type Matrix,
} from '../parallel/tensor-lesson';
import type { TensorLessonEvent, TensorLessonOpKind, TensorLessonReport } from '../shared/events';
import { CLASSROOM_COLLECTIVE, type LessonTensor, type OpMessage } from './classroom-protocol';
import { GatedLesson, type LessonMembership } from './lesson-steps';

/** The lesson's layer for `ranks` tabs: 2 rows of 3 inputs, 2 hidden units per rank, 2 outputs. */
export function tensorLessonShape(ranks: number): LessonShape {
  return { batch: 2, input: 3, hidden: 2 * ranks, output: 2, ranks };
}

/** Who runs a lesson step: one rank, or every rank at once (the all-reduces and the check). */
export interface TensorLessonStep {
  kind: TensorLessonOpKind;
  owner: number | 'all';
}

/** Steps 1..last of the lesson on `ranks` tabs (index k - 1 is step k; step 0 is every rank's setup). */
export function tensorLessonPlan(ranks: number): TensorLessonStep[] {
  const each = (kind: TensorLessonOpKind) => Array.from({ length: ranks }, (_, r): TensorLessonStep => ({ kind, owner: r }));
  return [
    ...each('layer1'),
    ...each('layer2'),
    { kind: 'all-reduce-output', owner: 'all' },
    ...each('layer2-grad'),
    ...each('layer1-grad'),
    { kind: 'all-reduce-input-grad', owner: 'all' },
    { kind: 'check', owner: 'all' },
  ];
}

const tensor = (name: string, m: Matrix): LessonTensor => ({ name, values: m.data.slice(), cols: m.cols });

/** Message numbers of the output's all-reduce start at 0, the input gradient's here: they never share a tag. */
const INPUT_GRAD_MSG_BASE = 1 << 16;

export interface TensorLessonSetup extends LessonMembership {
  publish(event: TensorLessonEvent): void;
}

export class TensorLesson extends GatedLesson<TensorLessonReport> {
  readonly ranks: number;
  readonly runId: string;
  /** The last step. */
  readonly steps: number;
  readonly plan: TensorLessonStep[];

  constructor(private readonly setup: TensorLessonSetup) {
    super(setup);
    this.ranks = setup.members.length;
    this.plan = tensorLessonPlan(this.ranks);
    this.steps = this.plan.length;
    this.runId = `${setup.lesson}:tensor`;
  }

  /** Who runs step `step`: one rank, or every rank (the setup, the all-reduces and the check). */
  private ownerOf(step: number): number | 'all' {
    return step === 0 ? 'all' : this.plan[step - 1].owner;
  }

  protected isComplete(step: number): boolean {
    return (this.reports.get(step)?.size ?? 0) >= (this.ownerOf(step) === 'all' ? this.ranks : 1);
  }

  protected missing(step: number): string {
    const owner = this.ownerOf(step);
    return owner === 'all' ? `ranks ${this.unreported(step)} did not report` : `rank ${owner} did not report its op`;
  }

  /** The layer's numbers every tab of this lesson derives from the lesson number. */
  values(): LessonValues {
    return integerLessonValues(tensorLessonShape(this.ranks), this.setup.lesson);
  }

  /** Runs this rank's part to the end (or until aborted, which rejects). */
  async run(): Promise<void> {
    const { X, W1, b1, W2, b2, target } = this.values();
    const h = W1.cols / this.ranks;
    const r = this.rank;
    // This rank's shards: its columns of W1 and b1, its rows of W2.
    const W1r = columns(W1, r * h, h);
    const b1r = columns(b1, r * h, h);
    const W2r = rowsOf(W2, r * h, h);
    this.report(0, [tensor('X', X), tensor('W1_r', W1r), tensor('b1_r', b1r), tensor('W2_r', W2r), tensor('b2', b2), tensor('target', target)]);

    // Filled in as the steps run; each step only reads what an earlier step of this rank computed.
    let Z = X, A = X, Y = X, dXr = X, dX = X, dW1 = X, db1 = X, dW2 = X;
    const allReduce = async (m: Matrix, msgBase: number): Promise<Matrix> => {
      const data = Float32Array.from(m.data);
      await runAllReduce(this.setup.transport, data, { round: this.setup.lesson, collective: CLASSROOM_COLLECTIVE, msgBase });
      return { rows: m.rows, cols: m.cols, data: Array.from(data) };
    };
    for (let step = 1; step <= this.steps; step++) {
      await this.gate.releasedUpTo(step);
      const { kind, owner } = this.plan[step - 1];
      if (owner !== 'all' && owner !== r) continue;
      let tensors: LessonTensor[];
      switch (kind) {
        case 'layer1':
          Z = addRow(matmul(X, W1r), b1r);
          A = relu(Z);
          tensors = [tensor('Z_r = X W1_r + b1_r', Z), tensor('A_r = relu(Z_r)', A)];
          break;
        case 'layer2':
          tensors = [tensor('P_r = A_r W2_r', matmul(A, W2r))];
          break;
        case 'all-reduce-output': {
          const P = await allReduce(matmul(A, W2r), 0);
          Y = addRow(P, b2);
          tensors = [tensor('P = sum P_r', P), tensor('Y = P + b2', Y)];
          break;
        }
        case 'layer2-grad': {
          const dY = map2(Y, target, (y, t) => y - t);
          dW2 = matmul(transpose(A), dY);
          tensors = [tensor('dY = Y - target', dY), tensor('dW2_r = A_r^T dY', dW2), tensor('db2 = sum rows dY', sumRows(dY))];
          break;
        }
        case 'layer1-grad': {
          const dY = map2(Y, target, (y, t) => y - t);
          const dZ = map2(Z, matmul(dY, transpose(W2r)), (z, d) => (z > 0 ? d : 0));
          dW1 = matmul(transpose(X), dZ);
          db1 = sumRows(dZ);
          dXr = matmul(dZ, transpose(W1r));
          tensors = [tensor("dZ_r = dY W2_r^T * relu'", dZ), tensor('dW1_r = X^T dZ_r', dW1), tensor('db1_r = sum rows dZ_r', db1), tensor('dX_r = dZ_r W1_r^T', dXr)];
          break;
        }
        case 'all-reduce-input-grad': {
          dX = await allReduce(dXr, INPUT_GRAD_MSG_BASE);
          tensors = [tensor('dX = sum dX_r', dX)];
          break;
        }
        case 'check': {
          // The unsplit layer, computed here from the whole matrices.
          const Zu = addRow(matmul(X, W1), b1);
          const Au = relu(Zu);
          const Yu = addRow(matmul(Au, W2), b2);
          const dYu = map2(Yu, target, (y, t) => y - t);
          const dZu = map2(Zu, matmul(dYu, transpose(W2)), (z, d) => (z > 0 ? d : 0));
          const dXu = matmul(dZu, transpose(W1));
          const differences = [
            maxAbsDifference(Y, Yu),
            maxAbsDifference(dX, dXu),
            maxAbsDifference(dW1, columns(matmul(transpose(X), dZu), r * h, h)),
            maxAbsDifference(db1, columns(sumRows(dZu), r * h, h)),
            maxAbsDifference(dW2, rowsOf(matmul(transpose(Au), dYu), r * h, h)),
          ];
          tensors = [tensor('unsplit Y', Yu), tensor('unsplit dX', dXu), { name: 'max |diff| Y dX dW1_r db1_r dW2_r', values: differences }];
          break;
        }
      }
      this.report(step, tensors, kind);
    }
  }

  /** Another rank's report. Returns a reason when it cannot be used. */
  receiveOp(from: string, message: OpMessage): string | null {
    if (this.setup.members[message.rank] !== from) return `classroom: peer ${from} reported as rank ${message.rank}`;
    if (message.step > this.steps) return `classroom: step ${message.step} is past the lesson's ${this.steps}`;
    let kind: TensorLessonOpKind | undefined;
    if (message.step > 0) {
      const expected = this.plan[message.step - 1];
      if (expected.owner !== 'all' && expected.owner !== message.rank) return `classroom: step ${message.step} is rank ${expected.owner}'s op, not rank ${message.rank}'s`;
      if (message.op?.kind !== expected.kind) return `classroom: step ${message.step} is ${expected.kind}, not ${message.op?.kind ?? 'a setup'}`;
      kind = expected.kind;
    } else if (message.op) return 'classroom: step 0 is the setup, not an op';
    this.record({ step: message.step, rank: message.rank, ...(kind ? { op: { kind } } : {}), tensors: message.tensors });
    return null;
  }

  // --- internals -----------------------------------------------------------------------------------

  private report(step: number, tensors: LessonTensor[], kind?: TensorLessonOpKind): void {
    const message: OpMessage = { kind: 'op', lesson: this.setup.lesson, step, rank: this.rank, ...(kind ? { op: { kind, micro: 0 } } : {}), tensors };
    this.tellOthers(message);
    this.record({ step, rank: this.rank, ...(kind ? { op: { kind } } : {}), tensors });
  }

  private record(report: TensorLessonReport): void {
    if (!this.keep(report.step, report.rank, report)) return;
    this.setup.publish({ type: 'tensor-lesson', runId: this.runId, ranks: this.ranks, steps: this.steps, rank: this.rank, teaching: this.teaching, report });
    this.gate.reported(report.step);
  }
}
