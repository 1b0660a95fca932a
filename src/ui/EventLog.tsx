// Frames the wire protocol refused (with their reasons) and the lab's log lines: the evidence that a
// bad peer was kept out, and what the lab said it was doing.
import type { FrameRefused, LogLine } from '../shared/events';

export interface EventLogProps {
  refused: { recent: readonly FrameRefused[]; total: number; byReason: Record<string, number> };
  logs: readonly LogLine[];
  /** Log lines shown, newest first. */
  limit?: number;
}

export function EventLog({ refused, logs, limit = 30 }: EventLogProps) {
  const reasons = Object.entries(refused.byReason).sort((a, b) => b[1] - a[1]);
  const recentLogs = logs.slice(-limit).reverse();
  return (
    <section className="panel event-log" aria-labelledby="log-title">
      <h2 id="log-title">Refused frames and log</h2>
      <p data-testid="refused-total">
        {refused.total === 0 ? 'No frame refused.' : `${refused.total} frame${refused.total === 1 ? '' : 's'} refused:`}
      </p>
      {reasons.length > 0 && (
        <ul className="refused-reasons">
          {reasons.map(([reason, n]) => (
            <li key={reason}>
              {reason}: {n}
            </li>
          ))}
        </ul>
      )}
      <ol className="log-lines" aria-label="Log, newest first">
        {recentLogs.map((line, i) => (
          <li key={`${line.t}-${i}`} className={`log-${line.level}`}>
            <span className="muted small">{(line.t / 1000).toFixed(1)} s</span> {line.message}
          </li>
        ))}
      </ol>
    </section>
  );
}
