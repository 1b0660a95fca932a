// Classroom mode: one all-reduce on a small vector, one schedule step at a time, forward and back. Each
// snapshot is the state the real mesh reported after that step (see ClassroomSnapshotEvent); this view
// only shows them: which chunk each rank received, the running partial sums, and when every rank holds
// the same total.
import { useEffect, useState, type KeyboardEvent } from 'react';
import type { ClassroomSnapshot } from '../shared/events';
import { allRanksAgree, expectedTotals, formatValue, sameNumber } from './classroom-math';

export interface ClassroomViewProps {
  snapshots: readonly ClassroomSnapshot[];
  /** Element range [start, end) of each chunk. */
  chunks: readonly { start: number; end: number }[];
  index: number;
  onIndexChange(index: number): void;
  /**
   * Asks the mesh for its next step (the collective's gate). Given only while the lesson is still
   * running: at the last snapshot, "Next" calls it instead of moving the index.
   */
  onAdvance?: () => void;
  /** Starts a new lesson. */
  onLoad?: () => void;
  /** Steps of the whole lesson; without it, the last snapshot received is taken as the last step. */
  totalSteps?: number;
  /** This tab leads the lesson (its Next moves every tab) or follows another tab's. */
  role?: 'teacher' | 'student';
}

const ROLE_TEXT = {
  teacher: 'You are teaching: Next runs one step on every tab of the room.',
  student: "Following the teacher's tab: each step appears when the teacher releases it. Prev and Next replay the steps already shown.",
};

const PLAY_INTERVAL_MS = 1200;

const PHASE_TEXT: Record<string, string> = {
  initial: 'Each rank starts with its own gradient vector.',
  'reduce-scatter': 'Reduce-scatter: each rank adds the chunk it received to its own copy of that chunk.',
  'all-gather': 'All-gather: each rank overwrites its chunk with the finished total it received.',
  gather: 'Gather: the server adds what each worker sent.',
  scatter: 'Scatter: the server sends the totals back.',
  broadcast: 'Broadcast: one rank sends its vector to all.',
  exchange: 'Exchange: every rank sends to every other.',
};

function chunkOf(chunks: readonly { start: number; end: number }[], i: number): number {
  return chunks.findIndex((c) => i >= c.start && i < c.end);
}

export function ClassroomView({ snapshots, chunks, index, onIndexChange, onAdvance, onLoad, role, totalSteps }: ClassroomViewProps) {
  const [playing, setPlaying] = useState(false);
  const last = snapshots.length - 1;
  const current = snapshots[Math.min(index, last)];
  const totals = expectedTotals(snapshots);
  const done = allRanksAgree(current, totals);
  const canNext = index < last || (onAdvance !== undefined && !done);

  const next = () => {
    if (index < last) onIndexChange(index + 1);
    else if (onAdvance && !done) onAdvance();
  };
  const prev = () => {
    if (index > 0) onIndexChange(index - 1);
  };

  // Playing steps through real snapshots (and asks the mesh for more); it stops at the end.
  useEffect(() => {
    if (!playing) return;
    if (!canNext) {
      setPlaying(false);
      return;
    }
    const timer = setTimeout(next, PLAY_INTERVAL_MS);
    return () => clearTimeout(timer);
  });

  const onKeyDown = (e: KeyboardEvent) => {
    if (e.key === 'ArrowRight') {
      e.preventDefault();
      next();
    } else if (e.key === 'ArrowLeft') {
      e.preventDefault();
      prev();
    }
  };

  return (
    <section className="panel classroom" aria-labelledby="classroom-title">
      <h2 id="classroom-title">Classroom: one all-reduce, step by step</h2>
      <div className="classroom-controls">
        {onLoad && (
          <button type="button" onClick={onLoad}>
            Load lesson
          </button>
        )}
        <button type="button" onClick={prev} disabled={index <= 0} aria-label="Previous step">
          ◀ Prev
        </button>
        <button type="button" onClick={() => setPlaying(!playing)} disabled={!current || (!playing && !canNext)}>
          {playing ? 'Pause' : 'Play'}
        </button>
        <button type="button" onClick={next} disabled={!canNext} aria-label="Next step">
          Next ▶
        </button>
      </div>
      {role && (
        <p className="classroom-role" data-testid="classroom-role" data-role={role}>
          {ROLE_TEXT[role]}
        </p>
      )}
      {!current ? (
        <p className="muted">No lesson loaded. Load runs one all-reduce of a small vector over this room's mesh, one step per Next.</p>
      ) : (
        <div
          className="classroom-body"
          tabIndex={0}
          onKeyDown={onKeyDown}
          role="group"
          aria-label="Lesson steps: left and right arrow keys move back and forward"
        >
          <p className="classroom-step" aria-live="polite" data-testid="classroom-step">
            Step {current.step} of {totalSteps ?? snapshots[last].step}
            {current.phase !== 'initial' && ` (${current.phase})`}. {PHASE_TEXT[current.phase] ?? ''}
          </p>
          <table className="classroom-table">
            <thead>
              <tr>
                <th scope="col">Rank</th>
                {chunks.map((c, k) => (
                  <th scope="col" key={k} colSpan={c.end - c.start}>
                    chunk {k}
                  </th>
                ))}
                <th scope="col">received</th>
              </tr>
            </thead>
            <tbody>
              {current.perRank.map((r) => (
                <tr key={r.rank} data-rank={r.rank}>
                  <th scope="row">{r.rank}</th>
                  {r.values.map((v, i) => {
                    const chunk = chunkOf(chunks, i);
                    const justReceived = r.received?.chunk === chunk;
                    const complete = totals !== null && sameNumber(v, totals[i]);
                    const cls = ['cell', justReceived ? 'received' : '', complete ? 'complete' : ''].join(' ').trim();
                    return (
                      <td key={i} className={cls} data-index={i} data-chunk={chunk} data-complete={complete || undefined}>
                        {formatValue(v)}
                      </td>
                    );
                  })}
                  <td className="received-cell">
                    {r.received
                      ? `chunk ${r.received.chunk} from rank ${r.received.from}: [${r.received.values.map(formatValue).join(', ')}]`
                      : '—'}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          <p className="classroom-status" data-testid="classroom-status">
            {done ? 'Every rank holds the same total.' : 'Bold cells already hold their full sum.'}
          </p>
        </div>
      )}
    </section>
  );
}
