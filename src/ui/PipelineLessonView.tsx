// The classroom's pipeline lesson (src/lab/pipeline-lesson.ts): one op of the whole pipeline per Next,
// on every tab, of the schedule (GPipe or 1F1B) and micro-batches the teacher picked before Load. Shows each stage's setup (its weights, the inputs, the targets), the op just run and
// the tensors its stage really computed, sent or received, this tab's own latest op, and the ops so
// far. Only reports that reached this tab are shown; nothing here is computed from the setup.
import { useState } from 'react';
import { PIPELINE_SCHEDULES, type PipelineScheduleKind } from '../collective/pipeline-schedules';
import { PIPELINE_LESSON, type PipelineLessonChoice } from '../lab/classroom';
import type { PipelineLessonReport } from '../shared/events';
import type { PipelineLessonSlice } from '../store/pipeline-lesson-slice';
import { formatValue } from './classroom-math';
import { LessonViewShell, type LessonViewProps, type LessonWords } from './LessonViewShell';

export type PipelineLessonViewProps = Omit<LessonViewProps<PipelineLessonSlice>, 'onLoad'> & {
  /** Loads a lesson of the schedule and micro-batches picked on this tab. */
  onLoad?: (choice: PipelineLessonChoice) => void;
};

/** Micro-batches a teacher can pick: enough to see 1F1B's steady state on a few tabs, few enough to click through. */
export const LESSON_MICRO_CHOICES = [1, 2, 3, 4] as const;

const SCHEDULE_TEXT: Record<PipelineScheduleKind, string> = { gpipe: 'GPipe', '1f1b': '1F1B' };

const OP_TEXT: Record<string, string> = {
  forward: 'forward',
  backward: 'backward',
  'send-activation': 'sends the activation to',
  'recv-activation': 'receives the activation from',
  'send-grad': 'sends the gradient to',
  'recv-grad': 'receives the gradient from',
};

const norm = (values: readonly number[]) => Math.sqrt(values.reduce((s, v) => s + v * v, 0));

export function describeOp(report: PipelineLessonReport): string {
  if (!report.op) return `stage ${report.rank} set up`;
  const { kind, micro, peer } = report.op;
  return `stage ${report.rank} ${OP_TEXT[kind]}${peer !== undefined ? ` stage ${peer}` : ''} (micro-batch ${micro})`;
}

function Tensors({ report }: { report: PipelineLessonReport }) {
  return (
    <span className="lesson-tensors">
      {report.tensors.map((t) => (
        <span key={t.name} className="lesson-tensor" data-name={t.name} data-values={JSON.stringify(t.values)}>
          {t.name} = [{t.values.map(formatValue).join(', ')}]{t.values.length > 1 && ` ‖${formatValue(Number(norm(t.values).toFixed(3)))}‖`}
        </span>
      ))}
    </span>
  );
}

const WORDS: LessonWords = {
  name: 'pipeline-lesson',
  className: 'pipeline-lesson',
  title: 'Pipeline lesson: one op at a time',
  loadLabel: 'Load pipeline lesson',
  nextLabel: 'Next op',
  intro:
    "Load splits a linear model across this room's tabs (one 2 x 2 layer each) and runs the schedule picked over the real mesh, one op per Next (GPipe: every forward, then every backward; 1F1B: a stage's warm-up forwards, then one forward and one backward in turn); each op shows the numbers the tab that ran it computed, sent or received.",
  unit: 'stage',
  setupCaption: 'Setup',
  setupClassName: 'pipeline-lesson-setup',
};

export function PipelineLessonView(props: PipelineLessonViewProps) {
  const { lesson, onLoad } = props;
  const [choice, setChoice] = useState<PipelineLessonChoice>(PIPELINE_LESSON);
  const ops = lesson.reports.filter((r) => r.step > 0);
  const latest = ops.at(-1);
  const done = ops.length > 0 && latest!.step === lesson.steps;
  return (
    <LessonViewShell
      {...props}
      onLoad={onLoad && (() => onLoad(choice))}
      loadOptions={
        <>
          <label>
            Schedule{' '}
            <select value={choice.schedule} onChange={(e) => setChoice({ ...choice, schedule: e.currentTarget.value as PipelineScheduleKind })}>
              {PIPELINE_SCHEDULES.map((kind) => (
                <option key={kind} value={kind}>
                  {SCHEDULE_TEXT[kind]}
                </option>
              ))}
            </select>
          </label>{' '}
          <label>
            Micro-batches{' '}
            <select value={choice.micro} onChange={(e) => setChoice({ ...choice, micro: Number(e.currentTarget.value) })}>
              {LESSON_MICRO_CHOICES.map((m) => (
                <option key={m} value={m}>
                  {m}
                </option>
              ))}
            </select>
          </label>{' '}
        </>
      }
      words={WORDS}
      readout={
        <>
          <p className="classroom-step" aria-live="polite" data-testid="pipeline-lesson-step" data-step={latest?.step ?? 0}>
            Op {latest?.step ?? 0} of {lesson.steps}: {latest ? describeOp(latest) : 'every stage holds its layer'}
            {done && '. The pipeline step is complete.'}
          </p>
          {latest && (
            <p className="readout" data-testid="pipeline-lesson-latest">
              <Tensors report={latest} />
            </p>
          )}
        </>
      }
      done={done}
      position={`This tab is stage ${lesson.stage} of ${lesson.stages} (${lesson.schedule}, ${lesson.micro} micro-batches).`}
      ownRank={lesson.stage}
      describeOwn={describeOp}
      tensors={(report) => <Tensors report={report} />}
    >
      <ol className="pipeline-lesson-ops">
        {ops.map((r) => (
          <li key={r.step} data-step={r.step} data-stage={r.rank} className={r === latest ? 'latest' : undefined}>
            <span className="lesson-op">{describeOp(r)}</span> <Tensors report={r} />
          </li>
        ))}
      </ol>
    </LessonViewShell>
  );
}
