// The frame every one-op-at-a-time classroom lesson view shares (PipelineLessonView, TensorLessonView):
// the title, Load and Next buttons (and what Load will run, where the lesson offers a choice), the introduction until a lesson is loaded, then this tab's role,
// the lesson's own readout of the op just run, this tab's last op, each rank's setup, and the ops so far.
// The lesson view supplies its words and how a report's tensors read; the test ids and data attributes
// (`<name>-role`, `<name>-own`, the setup rows' `data-stage` or `data-rank`) are the same for every lesson.
import type { ReactNode } from 'react';

/** What the frame reads of a lesson report: its step, its rank, and the op it ran (none on the setup). */
export interface LessonReportLike {
  step: number;
  rank: number;
  op?: { kind: string; micro?: number };
}

/** A lesson view's fixed words and names. */
export interface LessonWords {
  /** The lesson's name in ids and test ids: `pipeline-lesson`, `tensor-lesson`. */
  name: string;
  className: string;
  title: string;
  loadLabel: string;
  /** The Next button's accessible name. */
  nextLabel: string;
  /** Shown until a lesson is loaded. */
  intro: string;
  /** What a rank is called in the setup table: 'stage' or 'rank' (also its rows' data attribute). */
  unit: 'stage' | 'rank';
  setupCaption: string;
  setupClassName: string;
}

/** What a lesson view is given: its lesson's slice of the store, and what its buttons do. */
export interface LessonViewProps<Slice> {
  lesson: Slice;
  onLoad?: () => void;
  /** Releases the next op (teacher's tab, while ops are left). */
  onNext?: () => void;
}

export interface LessonViewShellProps<R extends LessonReportLike> extends LessonViewProps<{ runId: string | null; teaching: boolean; reports: readonly R[] }> {
  words: LessonWords;
  /** What the next Load will run (a pipeline lesson's schedule), shown beside the Load button. */
  loadOptions?: ReactNode;
  /** The rank that reports are this tab's own. */
  ownRank: number;
  /** Every op has run. */
  done: boolean;
  /** "This tab is stage 0 of 2 (…).": the role line's first sentence. */
  position: ReactNode;
  /** The op just run, as the lesson tells it. */
  readout: ReactNode;
  /** The words before this tab's last op's tensors ("stage 0 forward (micro-batch 1): "), if any. */
  describeOwn?: (report: R) => string;
  tensors: (report: R) => ReactNode;
  /** The ops so far: the lesson's list. */
  children: ReactNode;
}

export function LessonViewShell<R extends LessonReportLike>(props: LessonViewShellProps<R>) {
  const { lesson, onLoad, onNext, words } = props;
  const { name, unit } = words;
  const setups = lesson.reports.filter((r) => r.step === 0);
  const own = [...lesson.reports].reverse().find((r) => r.step > 0 && r.rank === props.ownRank);
  return (
    <section className={`panel ${words.className}`} aria-labelledby={`${name}-title`}>
      <h2 id={`${name}-title`}>{words.title}</h2>
      <div className="classroom-controls">
        {onLoad && props.loadOptions}
        {onLoad && (
          <button type="button" onClick={onLoad}>
            {words.loadLabel}
          </button>
        )}
        {lesson.runId !== null && (
          <button type="button" onClick={onNext} disabled={!onNext || !lesson.teaching || props.done} aria-label={words.nextLabel}>
            Next op ▶
          </button>
        )}
      </div>
      {lesson.runId === null ? (
        <p className="muted">{words.intro}</p>
      ) : (
        <>
          <p className="classroom-role" data-testid={`${name}-role`} data-role={lesson.teaching ? 'teacher' : 'student'}>
            {props.position}{' '}
            {lesson.teaching ? 'You are teaching: Next op runs the next op on whichever tab it belongs to.' : "Following the teacher's tab."}
          </p>
          {props.readout}
          <p className="readout" data-testid={`${name}-own`} data-step={own?.step ?? 0} data-kind={own?.op?.kind} data-micro={own?.op?.micro}>
            {own ? (
              <>
                This tab's last op (op {own.step}): {props.describeOwn && `${props.describeOwn(own)}: `}
                {props.tensors(own)}
              </>
            ) : (
              'This tab has not run an op yet.'
            )}
          </p>
          <table className={`classroom-table ${words.setupClassName}`}>
            <caption className="muted small">{words.setupCaption}</caption>
            <tbody>
              {setups.map((r) => (
                <tr key={r.rank} {...{ [`data-${unit}`]: r.rank }}>
                  <th scope="row">
                    {unit} {r.rank}
                  </th>
                  <td>{props.tensors(r)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {props.children}
        </>
      )}
    </section>
  );
}
