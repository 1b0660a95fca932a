// A room of unequal tabs (shares=auto): each rank's share of the global batch and the speed it was
// measured at, as the room last agreed them (src/parallel/share-balancer.ts). Nothing is drawn while
// the shares are even (before the first re-balancing, with shares=equal, or after a re-form).
import type { SharesReport } from '../shared/events';

export interface SharesViewProps {
  shares: SharesReport | null;
  /** This tab's rank, marked in the table. */
  selfRank?: number;
}

export function SharesView({ shares, selfRank }: SharesViewProps) {
  if (!shares) return null;
  const total = shares.counts.reduce((a, b) => a + b, 0);
  return (
    <section className="panel shares" aria-labelledby="shares-title">
      <h2 id="shares-title">Shares by speed</h2>
      <p className="muted small">
        {total} samples per step, split by each tab's measured speed, from step {shares.fromStep + 1}.
      </p>
      <table>
        <thead>
          <tr>
            <th scope="col">Rank</th>
            <th scope="col">Share</th>
            <th scope="col">Speed</th>
          </tr>
        </thead>
        <tbody>
          {shares.counts.map((count, rank) => (
            <tr key={rank} data-rank={rank} className={rank === selfRank ? 'self' : undefined}>
              <th scope="row">{rank === selfRank ? `${rank} (this tab)` : rank}</th>
              <td data-testid="share">
                {count} ({((100 * count) / total).toFixed(0)}%)
              </td>
              <td data-testid="speed">{Math.round(shares.samplesPerSec[rank]).toLocaleString('en-US')} samples/s</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
