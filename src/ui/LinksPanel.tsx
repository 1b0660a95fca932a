// The Links panel: collective=auto's fit of the cost model (alpha per round, what one link carries,
// what one rank receives and handles; src/collective/cost-model.ts) and, per bucket size, the
// algorithm it picks with its predicted time and latency bound, beside what the last refit measured.
// Nothing is drawn before a fit (a fixed collective, or a room of one).
import type { LinkRow, LinksView } from '../store/links-slice';
import { formatBytes } from './zero-layout';
export const msText = (ms: number) => (ms < 10 ? `${ms.toFixed(2)} ms` : `${ms.toFixed(1)} ms`);
const rateText = (mbps: number) => (Number.isFinite(mbps) ? `${mbps.toFixed(mbps < 10 ? 2 : 1)} MB/s` : 'free');

/** The fit in one line: "alpha 5.21 ms, link 19.8 MB/s, rank 41.3 MB/s (rms error 12%, 20 samples)". */
export function fitText(view: LinksView): string {
  return `alpha ${msText(view.alphaMs)}, link ${rateText(view.linkMBps)}, rank ${rateText(view.rankMBps)} (rms error ${Math.round(100 * view.rmsRelativeError)}%, ${view.samples} samples)`;
}

/** A refit's measurement of one bucket: "12.4 ms by naive (predicted 9.80 ms)". */
export function measuredText(row: LinkRow): string {
  if (!row.measured) return '–';
  const { algorithm, predictedMs, measuredMs } = row.measured;
  return `${msText(measuredMs)} by ${algorithm} (predicted ${msText(predictedMs)})`;
}

export function LinksPanel({ view }: { view: LinksView | null }) {
  if (!view) return null;
  return (
    <section className="panel links" aria-labelledby="links-title">
      <h2 id="links-title">Links</h2>
      <p className="small" data-testid="links-fit">
        {fitText(view)}
      </p>
      <p className="muted small">
        {view.kind === 'formed' ? `Probed when the ring of ${view.world} formed.` : `Refit after step ${view.step} (${view.world} tabs), effective from the next.`}
      </p>
      <table>
        <thead>
          <tr>
            <th scope="col">Bucket</th>
            <th scope="col">Pick</th>
            <th scope="col">Predicted</th>
            <th scope="col">Latency bound</th>
            <th scope="col">Measured</th>
          </tr>
        </thead>
        <tbody>
          {view.rows.map((row) => (
            <tr key={row.bytes} data-testid="links-row">
              <th scope="row">{formatBytes(row.bytes)}</th>
              <td>{row.algorithm}</td>
              <td>{msText(row.predictedMs)}</td>
              <td>{msText(row.latencyBoundMs)}</td>
              <td>{measuredText(row)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
