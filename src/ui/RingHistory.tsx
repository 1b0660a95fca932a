// How the elastic ring changed: each re-form with its epoch, the step it resumed at, the tabs that came
// and went, and why. Newest first; absent until the ring re-formed once.
import type { MembershipChange } from '../shared/events';

export interface RingHistoryProps {
  changes: readonly MembershipChange[];
}

/** Peer ids are long; their random tail tells tabs apart. */
function shortId(peerId: string): string {
  return peerId.slice(-8);
}

function describeChange(change: MembershipChange): string {
  const parts = [`${change.world} tab${change.world === 1 ? '' : 's'}`];
  if (change.left.length) parts.push(`left: ${change.left.map(shortId).join(', ')}`);
  if (change.joined.length) parts.push(`joined: ${change.joined.map(shortId).join(', ')}`);
  if (change.receivedState) parts.push('this tab received the state');
  return parts.join(' · ');
}

export function RingHistory({ changes }: RingHistoryProps) {
  if (changes.length === 0) return null;
  const newestFirst = [...changes].reverse();
  return (
    <section className="panel ring-history" aria-labelledby="ring-history-title">
      <h2 id="ring-history-title">Ring membership (epoch {newestFirst[0].epoch})</h2>
      <ol reversed className="ring-history-list">
        {newestFirst.map((change) => (
          <li key={change.epoch} data-epoch={change.epoch}>
            <strong>
              epoch {change.epoch}, from step {change.step}, rank {change.rank}
            </strong>
            <span> — {describeChange(change)}</span>
            <div className="muted">{change.reason}</div>
          </li>
        ))}
      </ol>
    </section>
  );
}
