// The classroom's tensor-parallel lesson (src/lab/tensor-class-lesson.ts): the two-layer MLP split across
// the room's tabs, one op per Next. Shows each rank's shards (W1 and b1 by columns, W2 by rows), the op
// just run with the matrices its rank really computed, this tab's own latest op, and every op so far,
// ending with each tab's check against the unsplit layer. Only reports that reached this tab are shown;
// nothing here is computed.
import type { TensorLessonReport } from '../shared/events';
import type { TensorLessonSlice } from '../store/tensor-lesson-slice';
import { formatValue } from './classroom-math';
import { LessonViewShell, type LessonViewProps, type LessonWords } from './LessonViewShell';

export type TensorLessonViewProps = LessonViewProps<TensorLessonSlice>;

const OP_TEXT: Record<string, string> = {
  layer1: "computes its columns of the first layer: Z_r = X W1_r + b1_r, then relu (no communication)",
  layer2: 'computes its partial output P_r = A_r W2_r over its own hidden units',
  'all-reduce-output': "all-reduce the partial outputs over the mesh (Megatron's g), then add b2 once",
  'layer2-grad': 'computes the gradient of its rows of W2 (dY is on every rank)',
  'layer1-grad': 'computes the gradient of its columns of W1 and b1, and its partial input gradient',
  'all-reduce-input-grad': "all-reduce the partial input gradients over the mesh (Megatron's f)",
  check: 'compute the unsplit layer from the whole matrices and compare',
};

export function describeTensorOp(report: TensorLessonReport, ranks: number): string {
  if (!report.op) return `rank ${report.rank} holds its shards`;
  const all = report.op.kind.startsWith('all-reduce') || report.op.kind === 'check';
  return `${all ? `all ${ranks} ranks` : `rank ${report.rank}`} ${OP_TEXT[report.op.kind]}`;
}

/** A matrix as its rows, "1 2 | 3 4": narrow enough for a phone. */
function rowsText(values: readonly number[], cols: number | undefined): string {
  const width = cols ?? values.length;
  const rows: string[] = [];
  for (let i = 0; i < values.length; i += width) rows.push(values.slice(i, i + width).map(formatValue).join(' '));
  return rows.join(' | ');
}

function Tensors({ report }: { report: TensorLessonReport }) {
  return (
    <span className="lesson-tensors">
      {report.tensors.map((t) => (
        <span key={t.name} className="lesson-tensor" data-name={t.name} data-values={JSON.stringify(t.values)} data-cols={t.cols}>
          {t.name} = [{rowsText(t.values, t.cols)}]
        </span>
      ))}
    </span>
  );
}

const WORDS: LessonWords = {
  name: 'tensor-lesson',
  className: 'pipeline-lesson tensor-lesson',
  title: 'Tensor-parallel lesson: one op at a time',
  loadLabel: 'Load tensor lesson',
  nextLabel: 'Next tensor op',
  intro:
    "Load splits the two-layer MLP Y = relu(X W1 + b1) W2 + b2 across this room's tabs (W1 by columns, W2 by rows) and runs its forward and backward pass one op per Next, with the two all-reduces over the real mesh.",
  unit: 'rank',
  setupCaption: 'Shards',
  setupClassName: 'pipeline-lesson-setup tensor-lesson-setup',
};

export function TensorLessonView(props: TensorLessonViewProps) {
  const { lesson } = props;
  const ops = lesson.reports.filter((r) => r.step > 0);
  const latestStep = ops.at(-1)?.step ?? 0;
  const latest = ops.filter((r) => r.step === latestStep);
  const done = latestStep === lesson.steps && latest.length === (latest[0]?.op?.kind === 'check' ? lesson.ranks : 1);
  const checks = ops.filter((r) => r.op?.kind === 'check');
  const exact = checks.length === lesson.ranks && checks.every((r) => r.tensors.at(-1)!.values.every((d) => d === 0));
  return (
    <LessonViewShell
      {...props}
      words={WORDS}
      readout={
        <p className="classroom-step" aria-live="polite" data-testid="tensor-lesson-step" data-step={latestStep}>
          Op {latestStep} of {lesson.steps}: {latest[0] ? describeTensorOp(latest[0], lesson.ranks) : 'every rank holds its shards'}
          {done && (exact ? '. Y and dX equal the unsplit layer’s on every tab.' : '. The split layer differs from the unsplit one.')}
        </p>
      }
      done={done}
      position={`This tab is rank ${lesson.rank} of ${lesson.ranks}.`}
      ownRank={lesson.rank}
      tensors={(report) => <Tensors report={report} />}
    >
      <ol className="pipeline-lesson-ops tensor-lesson-ops">
        {ops.map((r) => (
          <li key={`${r.step}:${r.rank}`} value={r.step} data-step={r.step} data-rank={r.rank} data-kind={r.op?.kind} className={r.step === latestStep ? 'latest' : undefined}>
            <span className="lesson-op">
              rank {r.rank}, {r.op?.kind}:
            </span>{' '}
            <Tensors report={r} />
          </li>
        ))}
      </ol>
    </LessonViewShell>
  );
}
